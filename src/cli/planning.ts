import type { Policy, Target } from '../policy/types.js';
import type { Plan, PlanOptions } from '../planner/types.js';
import { makePlan } from '../planner/plan.js';
import { observe, openStoragesFor, type OpenStorages } from '../apply/observe.js';
import { lockTargets, type LockSet } from '../apply/locks.js';
import { newId } from '../core/ids.js';
import { UserError } from '../core/diagnostics.js';
import { bkpVersion } from './context.js';

/** Observe, then plan: the I/O half and the pure half, wired together for plan, apply and backup. */
export async function observeAndPlan(
  policy: Policy,
  targets: Target[],
  now: Date,
  opts: PlanOptions,
  log: (line: string) => void,
  existing?: { storages: OpenStorages; holder: string },
): Promise<{ plan: Plan; storages: OpenStorages }> {
  const storages = existing?.storages ?? (await openStoragesFor(policy, targets));
  const observed = await observe(policy, targets, storages, log, existing?.holder);
  const plan = makePlan(policy, observed, now, { ...opts, targets: targets.map((t) => t.name) }, bkpVersion());
  return { plan, storages };
}

/** A run that writes: its id, its open storages and the locks it holds on its targets. */
export interface LockedRun {
  runId: string;
  holder: string;
  storages: OpenStorages;
  locks: LockSet;
}

/** Opens the targets' storages and locks them before anything is observed; release with `run.locks.release()`. */
export async function startLockedRun(policy: Policy, targets: Target[], command: string, warn: (message: string) => void): Promise<LockedRun> {
  const runId = newId();
  const holder = `bkp ${command} run ${runId}`;
  const storages = await openStoragesFor(policy, targets);
  for (const [name, storage] of storages) {
    try {
      await storage.checkWritable();
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`storage "${name}" (${storage.describe()}) cannot be written: ${(err as Error).message}`);
    }
  }
  const locks = await lockTargets(targets, storages, holder, warn);
  return { runId, holder, storages, locks };
}

export function hasChanges(plan: Plan): boolean {
  return plan.actions.length > 0;
}
