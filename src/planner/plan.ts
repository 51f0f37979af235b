import type { Diagnostic } from '../core/diagnostics.js';
import type { Policy, RetentionRules, Target } from '../policy/types.js';
import type {
  Action,
  BackupAction,
  BackupRecord,
  CleanupAction,
  CopyAction,
  LockInfo,
  ObservedState,
  ObservedStorage,
  Op,
  Plan,
  PlanOptions,
  PruneAction,
} from './types.js';
import { dueness } from './schedule.js';
import { planStorageUnit } from './replicate.js';
import { massPruneDiagnostics } from './safety.js';
import { observedFingerprint } from './fingerprint.js';
import { desiredResources, engineCatalog, producesArtifacts, retentionByEngine } from './resources/index.js';
import { planResources } from './resources/diff.js';


/**
 * The planner: a pure function of the policy, what was observed and the clock (DESIGN §3, §5).
 * No I/O, no clock, no environment. Returns the plan as data; apply carries it out as written.
 */
export function makePlan(policy: Policy, observed: ObservedState, now: Date, opts: PlanOptions, bkpVersion: string): Plan {
  const selected = selectTargets(policy, opts);
  const actions: Action[] = [];
  const diagnostics: Diagnostic[] = [];
  const notes: Plan['notes'] = [];
  const index = indexByTarget(observed);

  for (const target of selected) {
    const out = planTarget(policy, target, observed, index, now, opts);
    actions.push(...out.actions);
    diagnostics.push(...out.diagnostics);
    notes.push(...out.notes);
  }

  return {
    format_version: '1',
    bkp_version: bkpVersion,
    policy_file: policy.file,
    policy_digest: policy.digest,
    observed_fingerprint: observedFingerprint(observed),
    now: now.toISOString(),
    targets: selected.map((t) => t.name),
    actions,
    diagnostics,
    notes,
    summary: summarize(actions),
  };
}

/** Counts per op; `update` comes from declarative resources. */
export function summarize(actions: Action[]): Plan['summary'] {
  const count = (op: Op) => actions.filter((a) => (a.op as Op) === op).length;
  return { create: count('create'), update: count('update'), delete: count('delete') };
}

function selectTargets(policy: Policy, opts: PlanOptions): Target[] {
  const all = Object.values(policy.targets).sort((a, b) => a.name.localeCompare(b.name));
  if (opts.onDemand) return all.filter((t) => t.name === opts.onDemand!.target);
  if (!opts.targets || opts.targets.length === 0) return all;
  return all.filter((t) => opts.targets!.includes(t.name));
}

/** Backups and incomplete artifacts grouped by storage, then target: one pass, not one per target. */
type ObservedIndex = Map<string, Map<string, { backups: BackupRecord[]; incomplete: ObservedStorage['incomplete'] }>>;

function indexByTarget(observed: ObservedState): ObservedIndex {
  const index: ObservedIndex = new Map();
  for (const s of observed.storages) {
    const byTarget = new Map<string, { backups: BackupRecord[]; incomplete: ObservedStorage['incomplete'] }>();
    const entry = (t: string) => {
      let e = byTarget.get(t);
      if (!e) byTarget.set(t, (e = { backups: [], incomplete: [] }));
      return e;
    };
    for (const b of s.backups) entry(b.target).backups.push(b);
    for (const i of s.incomplete) entry(i.target).incomplete.push(i);
    index.set(s.name, byTarget);
  }
  return index;
}

interface TargetPlan {
  actions: Action[];
  diagnostics: Diagnostic[];
  notes: Plan['notes'];
}

function planTarget(policy: Policy, target: Target, observed: ObservedState, index: ObservedIndex, now: Date, opts: PlanOptions): TargetPlan {
  const res: TargetPlan = { actions: [], diagnostics: [], notes: [] };
  const observedTarget = observed.targets.find((t) => t.name === target.name);
  // An engine catalog (Elasticsearch snapshots) is the target's only storage; its lock still lives in bkp's storage.
  const catalog = engineCatalog(target);
  const storages = (catalog ? [catalog] : target.storage).map((name) => observed.storages.find((s) => s.name === name));
  const lockStorages = target.storage.map((name) => observed.storages.find((s) => s.name === name));
  const primary = storages[0];
  const units = observedTarget?.units ?? [];

  if (observedTarget?.error) {
    const msg = observedTarget.error.startsWith(`target ${target.name}`) ? observedTarget.error : `target ${target.name}: ${observedTarget.error}`;
    res.diagnostics.push({ severity: 'warning', code: 'observe.target', target: target.name, summary: msg });
  }
  for (const s of storages) {
    if (s?.error) res.diagnostics.push({ severity: 'warning', code: 'observe.storage', target: target.name, summary: s.error });
    for (const w of s?.warnings ?? []) res.diagnostics.push({ severity: 'warning', code: 'catalog.not_good', target: target.name, summary: `target ${target.name}: ${w}` });
  }

  const lock = activeLock(lockStorages, target.name);
  if (lock) {
    const msg = `locked by ${lock.holder} (host ${lock.host}, pid ${lock.pid}) since ${lock.created_at}, in storage ${lock.storage}: a backup is in progress, nothing planned; if that process is gone, run \`bkp unlock ${lock.id}\``;
    if (opts.onDemand) res.diagnostics.push({ severity: 'error', code: 'plan.locked', target: target.name, summary: `target ${target.name}: ${msg}` });
    else res.notes.push({ target: target.name, message: msg });
    return res;
  }
  // Declarative resources live on the engine's system, not in storage: planned whatever the storages say.
  const resources = planResources(target, desiredResources(target, units), observedTarget, now, opts);
  res.actions.push(...resources.actions);
  res.diagnostics.push(...resources.diagnostics);
  res.notes.push(...resources.notes);
  if (!primary || primary.error || (retentionByEngine(target) && !opts.onDemand)) return res;

  const mineIn = (storage: ObservedStorage) => index.get(storage.name)?.get(target.name) ?? { backups: [], incomplete: [] };
  const byUnit = (list: BackupRecord[]) => {
    const m = new Map<string, BackupRecord[]>();
    for (const b of list) {
      const l = m.get(b.unit);
      if (l) l.push(b);
      else m.set(b.unit, [b]);
    }
    return m;
  };
  const primaryByUnit = byUnit(mineIn(primary).backups);

  // 1. Backups of the primary storage.
  const backups = new Map<string, BackupAction>();
  // An SLM target takes no scheduled backup from bkp, but `bkp backup` runs its policy now.
  const backupUnits = producesArtifacts(target) || (opts.onDemand && retentionByEngine(target)) ? units : [];
  for (const unit of backupUnits) {
    if (opts.onDemand) {
      if (opts.onDemand.units && opts.onDemand.units.length > 0 && !opts.onDemand.units.includes(unit)) continue;
      backups.set(unit, backupAction(target, unit, primary.name, 'on_demand', 'on demand: bkp backup'));
      continue;
    }
    const newest = newestScheduled(primaryByUnit.get(unit) ?? []);
    const d = dueness(target.schedule, newest, now);
    if (d.due) backups.set(unit, backupAction(target, unit, primary.name, 'scheduled', d.reason));
  }
  res.actions.push(...[...backups.values()]);
  if (opts.onDemand) return res; // `bkp backup` only adds; retention runs with the next apply.

  // 2. Retention, copies and cleanup in every storage of the target. Copies come from the
  // first storage (in the target's order) that holds the backup.
  const prunes: PruneAction[] = [];
  const copies: CopyAction[] = [];
  const existing: BackupRecord[] = [];
  const readable = storages.filter((s): s is ObservedStorage => s !== undefined && !s.error);
  const unitsIn = new Map(readable.map((s) => [s.name, s === primary ? primaryByUnit : byUnit(mineIn(s).backups)]));
  for (const storage of readable) {
    const mine = mineIn(storage);
    existing.push(...mine.backups);
    const mineByUnit = unitsIn.get(storage.name)!;
    const rules = policy.storages[storage.name]?.retention ?? target.schedule.retention;
    for (const unit of units) {
      const elsewhere = readable.filter((s) => s !== storage).flatMap((s) => unitsIn.get(s.name)!.get(unit) ?? []);
      const r = planStorageUnit(target, unit, storage.name, storage === primary, mineByUnit.get(unit) ?? [], elsewhere, rules, now, backups.get(unit));
      copies.push(...r.copies);
      prunes.push(...r.prunes);
    }
    for (const [unit, list] of mineByUnit) {
      if (units.includes(unit)) continue;
      res.notes.push({ target: target.name, unit, message: `unit ${unit} is no longer in the policy: its ${list.length} backup(s) in ${storage.name} are left alone` });
    }
    res.actions.push(...mine.incomplete.map((i) => cleanupAction(target, storage, i)));
  }
  res.actions.push(...copies, ...prunes);
  res.diagnostics.push(...massPruneDiagnostics(target.name, existing, [...backups.values(), ...copies], prunes, opts.allowMassPrune === true));
  return res;
}

function activeLock(storages: (ObservedStorage | undefined)[], target: string): LockInfo | undefined {
  for (const s of storages) {
    const lock = s?.locks.find((l) => l.id === target);
    if (lock) return lock;
  }
  return undefined;
}

/** The start of the newest scheduled backup of a unit (ISO strings in one format sort as text). */
function newestScheduled(unitBackups: BackupRecord[]): Date | undefined {
  let newest: string | undefined;
  for (const b of unitBackups) if (b.kind === 'scheduled' && (newest === undefined || b.started_at > newest)) newest = b.started_at;
  return newest === undefined ? undefined : new Date(newest);
}

function backupAction(target: Target, unit: string, storage: string, kind: BackupAction['backup_kind'], reason: string): BackupAction {
  return {
    id: `backup.${target.name}.${unit}`,
    kind: 'backup',
    op: 'create',
    target: target.name,
    unit,
    storage,
    backup_kind: kind,
    reason,
    after: { storage, kind, engine: target.engine },
  };
}

function cleanupAction(target: Target, storage: ObservedStorage, i: ObservedStorage['incomplete'][number]): CleanupAction {
  return {
    id: `cleanup.${storage.name}.${i.key}`,
    kind: 'cleanup',
    op: 'delete',
    target: target.name,
    unit: i.unit,
    storage: storage.name,
    reason: `cleanup: ${i.why} (left by an interrupted backup)`,
    before: { key: i.key, size: i.size, modified_at: i.modified_at },
  };
}
