import pLimit from 'p-limit';
import type { Policy, Target } from '../policy/types.js';
import type { Action, BackupAction, CleanupAction, CopyAction, Manifest, Plan, PruneAction } from '../planner/types.js';
import { isResourceAction } from '../planner/types.js';
import { desiredResources } from '../planner/resources/index.js';
import type { Storage } from '../storage/types.js';
import { copyBackup } from './copy-backup.js';
import type { Clock } from '../core/clock.js';
import type { ActionOutput, ActionResult, ApplyEvent } from './events.js';
import type { OpenStorages } from './observe.js';
import { runHooks } from './hooks.js';
import { writeBackup } from './write-backup.js';
import { storageEncoding } from '../storage/codec/index.js';
import { makeRunRecord, saveRunRecord } from './run-record.js';
import { loadProvider } from '../providers/registry.js';
import { UserError } from '../core/diagnostics.js';
import { redact } from '../core/secrets.js';

export interface ApplyOptions {
  policy: Policy;
  plan: Plan;
  /** The run id; its locks are already held by the caller (see `lockTargets`). */
  runId: string;
  storages: OpenStorages;
  clock: Clock;
  parallelism: number;
  command: string;
  onEvent: (e: ApplyEvent) => void;
}

export interface ApplyOutcome {
  runId: string;
  results: ActionResult[];
  ok: boolean;
}

/**
 * Carries out a plan exactly as written (apply never re-decides, STYLE: Terraform), under locks
 * the caller took before observing. Per target: cleanups, declared resources, before hooks, backups, after hooks (always), prunes (skipped
 * when the unit's backup failed). Targets run in parallel up to `parallelism`. A failure in one
 * target never stops the others; the run record keeps every outcome.
 */
export async function applyPlan(o: ApplyOptions): Promise<ApplyOutcome> {
  const blocking = o.plan.diagnostics.filter((d) => d.severity === 'error');
  if (blocking.length > 0) throw new UserError(`the plan has errors, nothing was applied:\n${blocking.map((d) => `  ${d.summary}${d.detail ? `\n    ${d.detail}` : ''}`).join('\n')}`);

  const runId = o.runId;
  const startedAt = new Date();
  const results: ActionResult[] = [];
  if (o.plan.actions.length === 0) return { runId, results, ok: true };

  const byTarget = groupByTarget(o.plan.actions);
  const limit = pLimit(Math.max(1, o.parallelism));
  await Promise.all([...byTarget].map(([t, actions]) => limit(async () => results.push(...(await applyTarget(o, o.policy.targets[t]!, actions))))));

  const record = makeRunRecord({
    id: runId,
    command: o.command,
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    targets: [...byTarget.keys()],
    plan_summary: o.plan.summary,
    actions: results,
  });
  const written = new Set([...byTarget.keys()].map((t) => o.policy.targets[t]!.storage[0]!));
  for (const name of written) {
    try {
      await saveRunRecord(o.storages.get(name)!, record, o.policy.history);
    } catch (err) {
      o.onEvent({ type: 'warning', message: `could not write the run record to storage ${name}: ${(err as Error).message}` });
    }
  }
  return { runId, results, ok: record.status === 'succeeded' };
}

function groupByTarget(actions: Action[]): Map<string, Action[]> {
  const m = new Map<string, Action[]>();
  for (const a of actions) m.set(a.target, [...(m.get(a.target) ?? []), a]);
  return m;
}

async function applyTarget(o: ApplyOptions, target: Target, actions: Action[]): Promise<ActionResult[]> {
  const results: ActionResult[] = [];
  const failed = new Set<string>();
  /** Backups taken in this apply, by action id: copies of "the backup this apply takes" read them. */
  const produced = new Map<string, Manifest>();
  const log = (line: string) => o.onEvent({ type: 'log', target: target.name, line: redact(line) });
  const run = async (a: Action, fn: () => Promise<ActionOutput>) => {
    const t0 = Date.now();
    o.onEvent({ type: 'action_started', action: a });
    try {
      const r = await fn();
      const duration_ms = Date.now() - t0;
      o.onEvent({ type: 'action_finished', action: a, duration_ms, ...r });
      results.push({ id: a.id, kind: a.kind, op: a.op, target: a.target, unit: a.unit, status: 'succeeded', duration_ms, ...r });
    } catch (err) {
      const duration_ms = Date.now() - t0;
      const error = redact((err as Error).message);
      failed.add(a.id);
      o.onEvent({ type: 'action_failed', action: a, error, duration_ms });
      results.push({ id: a.id, kind: a.kind, op: a.op, target: a.target, unit: a.unit, status: 'failed', error, duration_ms });
    }
  };
  const skip = (a: Action, reason: string) => {
    o.onEvent({ type: 'action_skipped', action: a, reason });
    results.push({ id: a.id, kind: a.kind, op: a.op, target: a.target, unit: a.unit, status: 'skipped', error: reason, duration_ms: 0 });
  };

  for (const a of actions.filter((x): x is CleanupAction => x.kind === 'cleanup')) {
    await run(a, async () => {
      await o.storages.get(a.storage)!.delete(a.before.key);
      return { deleted: a.before.key };
    });
  }

  // Declared resources first: a snapshot repository must exist before a snapshot goes into it.
  const resources = actions.filter(isResourceAction);
  if (resources.length > 0) {
    const provider = await loadProvider(target.engine);
    const desired = desiredResources(target, [...new Set(resources.flatMap((r) => (r.unit ? [r.unit] : [])))]);
    for (const a of resources) {
      await run(a, async () => {
        if (!provider.applyResource) throw new Error(`engine ${target.engine} cannot change ${a.kind} resources`);
        const d = desired.find((x) => x.name === a.name);
        if (!d && a.op !== 'delete') throw new Error(`${a.kind} ${a.name} is no longer declared by the policy`);
        return provider.applyResource(target, a, d, { log });
      });
    }
  }

  const backups = actions.filter((x): x is BackupAction => x.kind === 'backup');
  if (backups.length > 0) {
    const hookOpts = { timeoutMs: target.hooks.timeoutMs, cwd: target.baseDir, target: target.name, log };
    let hookError: string | undefined;
    try {
      await runHooks('before', target.hooks.before, hookOpts);
    } catch (err) {
      hookError = redact((err as Error).message);
    }
    for (const a of backups) {
      if (hookError) {
        await run(a, async () => {
          throw new Error(`not started: ${hookError}`);
        });
        continue;
      }
      await run(a, () => backupOne(o, target, a, log, (m) => produced.set(a.id, m)));
    }
    // After hooks run whatever happened, so stopped services come back (seed 003).
    try {
      await runHooks('after', target.hooks.after, hookOpts);
    } catch (err) {
      o.onEvent({ type: 'warning', message: redact((err as Error).message) });
      results.push({ id: `hooks.after.${target.name}`, kind: 'hook', target: target.name, status: 'failed', error: redact((err as Error).message), duration_ms: 0 });
    }
  }

  // Copies to the other storages, after the backups they may depend on.
  for (const a of actions.filter((x): x is CopyAction => x.kind === 'copy')) {
    if (a.requires && !produced.has(a.requires)) {
      skip(a, `not copied: the backup of ${a.target}/${a.unit} failed in this apply`);
      failed.add(a.id);
      continue;
    }
    await run(a, async () => {
      const from = o.storages.get(a.source.storage)!;
      const made = a.requires ? produced.get(a.requires)! : undefined;
      const key = a.source.key ?? artifactKeyOf(a, made!);
      const manifest = made ?? (await readManifestAt(from, a.source.manifest_key!, a.source.id!));
      const copied = await copyBackup({
        from,
        fromEncoding: storageEncoding(o.policy.storages[a.source.storage]),
        key,
        manifest,
        to: o.storages.get(a.storage)!,
        toEncoding: storageEncoding(o.policy.storages[a.storage]),
        onProgress: throttledProgress(o, a),
      });
      return { backup_id: copied.id, bytes: copied.size, sha256: copied.sha256 };
    });
  }

  for (const a of actions.filter((x): x is PruneAction => x.kind === 'prune')) {
    if (a.requires && failed.has(a.requires)) {
      skip(a, `not pruned: the ${a.requires.startsWith('copy.') ? 'copy of tonight\'s backup' : 'backup'} of ${a.target}/${a.unit} failed in this apply (safety rule)`);
      continue;
    }
    await run(a, async () => {
      const storage = o.storages.get(a.storage);
      if (!storage) {
        // An engine catalog (Elasticsearch snapshots): the engine deletes its own backup.
        const provider = await loadProvider(target.engine);
        if (!provider.deleteBackup) throw new Error(`engine ${target.engine} cannot delete from ${a.storage}`);
        await provider.deleteBackup(target, a, { log });
        return { deleted: a.before.key };
      }
      // Manifest first: from then on the backup is no longer listed as good, whatever happens next.
      await storage.delete(a.before.manifest_key);
      await storage.delete(a.before.key);
      return { deleted: a.before.key };
    });
  }
  return results;
}

/**
 * Progress as events, at most every 250 ms: storage reports every chunk (pg_dump writes 4 KiB at
 * a time), and one event per chunk would be 100,000 JSON lines for a 400 MB dump.
 */
function throttledProgress(o: ApplyOptions, a: Action): (bytes: number) => void {
  let last = 0;
  return (bytes) => {
    const now = Date.now();
    if (now - last < 250) return;
    last = now;
    o.onEvent({ type: 'progress', action: a, bytes });
  };
}

/** The key of a backup taken in this apply, from its manifest: same folder layout as every artifact. */
function artifactKeyOf(a: CopyAction, m: Manifest): string {
  return `${a.target}/${a.unit}/${m.artifact}`;
}

async function readManifestAt(storage: Storage, manifestKey: string, id: string): Promise<Manifest> {
  const m = JSON.parse(await storage.getText(manifestKey)) as Manifest;
  if (m.id !== id) throw new Error(`manifest ${manifestKey} in storage ${storage.name} does not describe backup ${id}`);
  return m;
}

async function backupOne(o: ApplyOptions, target: Target, a: BackupAction, log: (line: string) => void, made: (m: Manifest) => void): Promise<ActionOutput> {
  const provider = await loadProvider(target.engine);
  const storage = o.storages.get(a.storage);
  if (!storage) {
    // An engine catalog: the engine takes the backup inside its own system (a snapshot).
    if (!provider.takeBackup) throw new Error(`engine ${target.engine} cannot take backups into ${a.storage}`);
    const m = await provider.takeBackup(target, a.unit, a.backup_kind, o.clock.now(), { log });
    made(m);
    return { backup_id: m.id, ...(m.size ? { bytes: m.size } : {}), detail: `snapshot ${m.artifact}` };
  }
  const t0 = Date.now();
  const manifest = await writeBackup({
    target,
    unit: a.unit,
    kind: a.backup_kind,
    provider,
    storage,
    startedAt: o.clock.now(),
    ctx: { log },
    onProgress: throttledProgress(o, a),
    elapsedMs: () => Date.now() - t0,
    encode: storageEncoding(o.policy.storages[a.storage]),
  });
  made(manifest);
  return { backup_id: manifest.id, bytes: manifest.size, sha256: manifest.sha256 };
}
