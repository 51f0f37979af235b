import type { Policy, RetentionRules, Target } from '../policy/types.js';
import type { ObservedStorage } from './types.js';
import { retainUnit } from './unit-retention.js';

/** One field that differs between two policies, in its written (secret-free) form. */
export interface FieldChange {
  field: string;
  old?: unknown;
  new?: unknown;
}

/** What a retention change does to the backups that exist now, per unit and storage. */
export interface UnitImpact {
  storage: string;
  unit: string;
  existing: number;
  /** Backups the old policy keeps and the new one prunes. */
  lost: number;
  remaining: number;
}

export interface TargetImpact {
  lost: number;
  units: UnitImpact[];
  /** Units that would have no backup left in some storage. */
  unitsLeftEmpty: string[];
  /** Storages the target no longer writes to (their backups stay, but get no new ones). */
  storagesDropped: string[];
}

export interface TargetDiff {
  target: string;
  change: 'added' | 'removed' | 'changed';
  fields: FieldChange[];
  impact?: TargetImpact;
  /** Backups a removed target leaves behind (never pruned by bkp). */
  orphaned?: number;
}

/** A semantic diff of two policies, most destructive change first. */
export interface PolicyDiff {
  format_version: '1';
  old_file: string;
  new_file: string;
  now: string;
  targets: TargetDiff[];
  storages: { storage: string; change: 'added' | 'removed' | 'changed'; fields: FieldChange[] }[];
  /** Set when the catalog could not be read: the impact is then unknown, not zero. */
  impact_unknown?: string;
  summary: { added: number; removed: number; changed: number; lost: number };
}

const RULE_KEYS: (keyof RetentionRules)[] = [
  'keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly',
  'keep_within', 'keep_within_hourly', 'keep_within_daily', 'keep_within_weekly', 'keep_within_monthly', 'keep_within_yearly', 'keep_on_demand',
];

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The retention that applies to a target's backups in one storage (a storage's own wins). */
function retentionIn(policy: Policy, target: Target, storage: string): RetentionRules {
  return policy.storages[storage]?.retention ?? target.schedule.retention;
}

function targetFields(oldP: Policy, newP: Policy, o: Target, n: Target): FieldChange[] {
  const out: FieldChange[] = [];
  const cmp = (field: string, a: unknown, b: unknown) => {
    if (!same(a, b)) out.push({ field, old: a, new: b });
  };
  cmp('engine', o.engine, n.engine);
  cmp('storage', o.storage, n.storage);
  cmp('schedule', o.schedule.name ?? '(inline)', n.schedule.name ?? '(inline)');
  cmp('schedule.cron', o.schedule.cron, n.schedule.cron);
  cmp('schedule.timezone', o.schedule.timezone, n.schedule.timezone);
  for (const storage of [...new Set([...o.storage, ...n.storage])]) {
    if (!o.storage.includes(storage) || !n.storage.includes(storage)) continue;
    const a = retentionIn(oldP, o, storage);
    const b = retentionIn(newP, n, storage);
    for (const k of RULE_KEYS) cmp(`retention.${k}${n.storage.length > 1 ? ` (${storage})` : ''}`, a[k], b[k]);
  }
  for (const k of [...new Set([...Object.keys(o.displaySettings), ...Object.keys(n.displaySettings)])].sort()) {
    cmp(k, o.displaySettings[k], n.displaySettings[k]);
  }
  cmp('hooks.before', o.hooks.before, n.hooks.before);
  cmp('hooks.after', o.hooks.after, n.hooks.after);
  return out;
}

function impactOf(oldP: Policy, newP: Policy, o: Target, n: Target, catalog: ObservedStorage[], now: Date): TargetImpact {
  const units: UnitImpact[] = [];
  for (const storage of n.storage.filter((s) => o.storage.includes(s))) {
    const observed = catalog.find((c) => c.name === storage);
    if (!observed) continue;
    const mine = observed.backups.filter((b) => b.target === n.name);
    for (const unit of [...new Set(mine.map((b) => b.unit))].sort()) {
      const list = mine.filter((b) => b.unit === unit);
      const items = list.map((b) => ({ id: b.id, time: new Date(b.started_at), kind: b.kind }));
      const newest = list[list.length - 1]!.id;
      const before = retainUnit(items, retentionIn(oldP, o, storage), o.schedule.timezone, now, newest);
      const after = retainUnit(items, retentionIn(newP, n, storage), n.schedule.timezone, now, newest);
      const keptBefore = new Set(before.keep);
      const lost = after.prune.filter((id) => keptBefore.has(id)).length;
      units.push({ storage, unit, existing: list.length, lost, remaining: after.keep.length });
    }
  }
  return {
    lost: units.reduce((s, u) => s + u.lost, 0),
    units,
    unitsLeftEmpty: units.filter((u) => u.remaining === 0).map((u) => `${u.unit} in ${u.storage}`),
    storagesDropped: o.storage.filter((s) => !n.storage.includes(s)),
  };
}

/**
 * What changing OLD into NEW does (pure: the catalog and the clock are arguments). Targets are
 * ordered by damage: most backups lost first, then removed targets, then other changes, then
 * additions — the most destructive change is what a reviewer reads first.
 */
export function diffPolicies(oldP: Policy, newP: Policy, catalog: ObservedStorage[] | undefined, now: Date, impactUnknown?: string): PolicyDiff {
  const targets: TargetDiff[] = [];
  const names = [...new Set([...Object.keys(oldP.targets), ...Object.keys(newP.targets)])].sort();
  for (const name of names) {
    const o = oldP.targets[name];
    const n = newP.targets[name];
    if (o && !n) {
      const orphaned = catalog?.flatMap((c) => c.backups.filter((b) => b.target === name)).length;
      targets.push({ target: name, change: 'removed', fields: [], orphaned });
    } else if (!o && n) {
      targets.push({ target: name, change: 'added', fields: [{ field: 'engine', new: n.engine }, { field: 'schedule.cron', new: n.schedule.cron }, { field: 'storage', new: n.storage }] });
    } else if (o && n) {
      const fields = targetFields(oldP, newP, o, n);
      if (fields.length === 0) continue;
      targets.push({ target: name, change: 'changed', fields, impact: catalog ? impactOf(oldP, newP, o, n, catalog, now) : undefined });
    }
  }
  const rank = (t: TargetDiff) => (t.impact?.lost ? 0 : t.change === 'removed' ? 1 : t.impact?.storagesDropped.length ? 2 : t.change === 'changed' ? 3 : 4);
  targets.sort((a, b) => rank(a) - rank(b) || (b.impact?.lost ?? 0) - (a.impact?.lost ?? 0) || a.target.localeCompare(b.target));

  const storages: PolicyDiff['storages'] = [];
  for (const name of [...new Set([...Object.keys(oldP.storages), ...Object.keys(newP.storages)])].sort()) {
    const o = oldP.storages[name];
    const n = newP.storages[name];
    if (o && !n) storages.push({ storage: name, change: 'removed', fields: [] });
    else if (!o && n) storages.push({ storage: name, change: 'added', fields: [{ field: 'type', new: n.type }] });
    else if (o && n) {
      const fields: FieldChange[] = [];
      if (o.type !== n.type) fields.push({ field: 'type', old: o.type, new: n.type });
      const loc = (s: typeof o) => (s.type === 'local' ? s.path : s.options);
      if (!same(loc(o), loc(n))) fields.push({ field: o.type === 'local' ? 'path' : 'options', old: loc(o), new: loc(n) });
      if (!same(o.retention, n.retention)) fields.push({ field: 'retention', old: o.retention, new: n.retention });
      if (fields.length) storages.push({ storage: name, change: 'changed', fields });
    }
  }

  return {
    format_version: '1',
    old_file: oldP.file,
    new_file: newP.file,
    now: now.toISOString(),
    targets,
    storages,
    ...(impactUnknown ? { impact_unknown: impactUnknown } : {}),
    summary: {
      added: targets.filter((t) => t.change === 'added').length,
      removed: targets.filter((t) => t.change === 'removed').length,
      changed: targets.filter((t) => t.change === 'changed').length,
      lost: targets.reduce((s, t) => s + (t.impact?.lost ?? 0), 0),
    },
  };
}
