import type { Diagnostic } from '../../core/diagnostics.js';
import type { Target } from '../../policy/types.js';
import type { DesiredResource, ObservedResource, ObservedTarget, PlanOptions, ResourceAction, ResourceValue } from '../types.js';
import { iso, lastFire } from '../schedule.js';
import { specDigest } from './digest.js';

export interface ResourcePlan {
  actions: ResourceAction[];
  diagnostics: Diagnostic[];
  notes: { target: string; unit?: string; message: string }[];
}

/** What a plan shows in place of a secret: whether there is one, never what it is. */
export const SENSITIVE = '(sensitive)';

/**
 * The resource half of a target's plan (DESIGN §3): each declared resource created, changed
 * field by field, or left alone; a one-shot task run again when its schedule is due (or by
 * `bkp backup`); managed resources no longer declared deleted. Resources without bkp's mark
 * are never touched: one in the way of a declared name is an error. Pure.
 */
export function planResources(target: Target, desired: DesiredResource[], observed: ObservedTarget | undefined, now: Date, opts: PlanOptions): ResourcePlan {
  const out: ResourcePlan = { actions: [], diagnostics: [], notes: [] };
  if (desired.length === 0 && !observed?.resources?.length) return out;
  if (observed?.resourcesError) {
    out.diagnostics.push({ severity: 'warning', code: 'observe.resources', target: target.name, summary: `target ${target.name}: ${observed.resourcesError}; its ${desired[0]?.kind ?? 'resource'}s are left as they are` });
    return out;
  }
  const onDemand = opts.onDemand;
  const wanted = (unit: string | undefined) => !onDemand?.units?.length || (unit !== undefined && onDemand.units.includes(unit));
  const found = new Map((observed?.resources ?? []).map((r) => [r.name, r]));

  for (const d of desired) {
    if (!wanted(d.unit)) continue;
    const o = found.get(d.name);
    if (o && !o.deleted && !o.managed) {
      out.diagnostics.push({
        severity: 'error',
        code: 'resource.unmanaged',
        target: target.name,
        summary: `target ${target.name}: ${d.kind} ${d.name} already exists and was not made by bkp; bkp never changes what it did not create: remove or rename it, or rename the target`,
      });
      continue;
    }
    if (!o || o.deleted) {
      out.actions.push(action(d, 'create', o?.deleted ? 'drift' : 'create', o?.deleted ? `drift: ${d.kind} ${d.name} was deleted on the live system; bkp creates it again` : `declared: ${describe(d)}`));
      continue;
    }
    reportState(target, d, o, out);
    const changed = changedFields(d, o);
    if (changed.length > 0) {
      const drift = o.mark_digest !== undefined && o.mark_digest !== specDigest(o.spec, d.sensitive);
      const why = drift ? `drift: ${changed.join(', ')} changed on the live system since bkp wrote it` : `policy changed: ${changed.join(', ')}`;
      out.actions.push(action(d, 'update', drift ? 'drift' : 'change', why, o, changed));
      continue;
    }
    const rerun = rerunReason(target, d, o, now, onDemand !== undefined);
    if (rerun) out.actions.push(action(d, 'update', 'rerun', rerun, o, []));
    else if (d.rerunnable && (o.state?.status === 'running' || o.state?.status === 'pending')) {
      out.notes.push({ target: target.name, ...(d.unit ? { unit: d.unit } : {}), message: `${d.kind} ${d.name} is still ${o.state.status}${o.state.last_run_at ? ` (since ${o.state.last_run_at})` : ''}: left to finish` });
    }
  }

  // `bkp backup` only adds; a target whose units could not be discovered keeps what it has.
  if (onDemand || observed?.error) return out;
  const declared = new Set(desired.map((d) => d.name));
  for (const o of observed?.resources ?? []) {
    if (!o.managed || o.deleted || o.target !== target.name || declared.has(o.name)) continue;
    out.actions.push({
      id: `${o.kind}.${target.name}.${o.name}`,
      kind: o.kind,
      op: 'delete',
      target: target.name,
      ...(o.unit ? { unit: o.unit } : {}),
      name: o.name,
      change: 'delete',
      reason: `no longer declared: ${o.unit ? `${o.unit} is not in the target's databases` : 'not in the policy'}`,
      before: maskValues(o.spec, o.spec, o.sensitive),
      ...(o.revision ? { revision: o.revision } : {}),
    });
  }
  return out;
}

function action(d: DesiredResource, op: 'create' | 'update', change: ResourceAction['change'], reason: string, o?: ObservedResource, changed?: string[]): ResourceAction {
  return {
    id: `${d.kind}.${d.target}.${d.name}`,
    kind: d.kind,
    op,
    target: d.target,
    ...(d.unit ? { unit: d.unit } : {}),
    name: d.name,
    change,
    reason,
    ...(o && !o.deleted ? { before: maskValues(o.spec, o.spec, d.sensitive), revision: o.revision } : {}),
    after: maskValues(d.spec, d.spec, d.sensitive),
    ...(changed ? { changed } : {}),
  };
}

/** The spec as a plan may show it: sensitive fields become `(sensitive)` (or stay null when unset). */
function maskValues(spec: Record<string, ResourceValue>, values: Record<string, ResourceValue>, sensitive: readonly string[]): Record<string, ResourceValue> {
  const out: Record<string, ResourceValue> = {};
  for (const k of Object.keys(spec)) {
    const v = values[k] ?? null;
    out[k] = sensitive.includes(k) && v !== null ? SENSITIVE : v;
  }
  return out;
}

function changedFields(d: DesiredResource, o: ObservedResource): string[] {
  return Object.keys(d.spec).filter((k) => (d.spec[k] ?? null) !== (o.spec[k] ?? null));
}

function describe(d: DesiredResource): string {
  if (d.kind === 'replication') return `replicate ${d.spec.source} to ${d.spec.target}${d.spec.continuous ? ' (continuous)' : ' (one-shot)'}`;
  return `${d.kind} ${d.name}`;
}

/** Failed and crashing tasks are shown with the server's words, whatever else the plan does. */
function reportState(target: Target, d: DesiredResource, o: ObservedResource, out: ResourcePlan): void {
  const st = o.state;
  if (!st || (st.status !== 'failed' && st.status !== 'crashing')) return;
  out.diagnostics.push({
    severity: 'warning',
    code: `resource.${st.status}`,
    target: target.name,
    summary: `target ${target.name}: ${d.kind} ${d.name} ${st.status === 'failed' ? 'failed' : 'keeps crashing'}${st.last_run_at ? ` (${st.last_run_at})` : ''}: ${st.error ?? 'the server gave no reason'}`,
  });
}

/**
 * Why a one-shot task runs again, or undefined: on demand unless it is running; when the
 * schedule fired after it last completed (or failed). A task still running or pending is left
 * to finish; one whose state the server does not tell is left alone.
 */
function rerunReason(target: Target, d: DesiredResource, o: ObservedResource, now: Date, onDemand: boolean): string | undefined {
  if (!d.rerunnable) return undefined;
  const st = o.state;
  const busy = st && (st.status === 'running' || st.status === 'pending');
  if (onDemand) return busy ? undefined : 'on demand: bkp backup reruns the replication';
  if (!st || busy || st.status === 'crashing') return undefined;
  if (st.status === 'unknown' || !st.last_run_at) return undefined;
  const last = new Date(st.last_run_at);
  const fired = lastFire(target.schedule, now);
  const when = `schedule ${target.schedule.cron} (${target.schedule.timezone}) fired ${iso(fired)}`;
  if (fired.getTime() <= last.getTime()) return undefined;
  const verb = st.status === 'failed' ? 'failed' : 'completed';
  return `due: last run ${verb} ${iso(last)}, ${when}`;
}
