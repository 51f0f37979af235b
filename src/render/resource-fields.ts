import type { ResourceAction, ResourceValue } from '../planner/types.js';

/** One field of a resource block: `from` is set when an update changes it. */
export interface ResourceRow {
  key: string;
  value: string;
  from?: string;
}

/** A value as Terraform shows it: strings quoted, booleans and numbers bare, null as `null`. */
export function showValue(v: ResourceValue | undefined): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v ?? null);
}

/**
 * The fields of a resource action, in the spec's order: what it will be (create, rerun), what it
 * was (delete), or both for the fields an update changes. A changed secret shows as
 * `(sensitive)` on both sides: the plan says that it changes, never what it was or becomes.
 */
export function resourceRows(a: ResourceAction): ResourceRow[] {
  const shown = a.op === 'delete' ? a.before ?? {} : a.after ?? {};
  const changed = new Set(a.changed ?? []);
  return Object.keys(shown).map((key) => {
    const value = showValue(shown[key]);
    if (a.op === 'update' && changed.has(key)) {
      const from = showValue(a.before?.[key]);
      return { key, value: from === value ? `${value} (changed)` : value, from };
    }
    return { key, value };
  });
}

/** `replication "bkp-iot-hazardevents"`. */
export function resourceAddress(a: ResourceAction): string {
  return `${a.kind} ${JSON.stringify(a.name)}`;
}

/** `replication iot/hazardevents: rerun` for progress lines. */
export function resourceLabel(a: ResourceAction): string {
  const verb = a.change === 'rerun' ? 'rerun' : a.op;
  return `${a.target}${a.unit ? `/${a.unit}` : ''}: ${verb} ${a.kind} ${a.name}`;
}
