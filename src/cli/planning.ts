import type { Policy, Target } from '../policy/types.js';
import type { Plan, PlanOptions } from '../planner/types.js';
import { makePlan } from '../planner/plan.js';
import { observe, openStoragesFor, type OpenStorages } from '../apply/observe.js';
import { bkpVersion } from './context.js';

/** Observe, then plan: the I/O half and the pure half, wired together for plan, apply and backup. */
export async function observeAndPlan(
  policy: Policy,
  targets: Target[],
  now: Date,
  opts: PlanOptions,
  log: (line: string) => void,
): Promise<{ plan: Plan; storages: OpenStorages }> {
  const storages = await openStoragesFor(policy, targets);
  const observed = await observe(policy, targets, storages, log);
  const plan = makePlan(policy, observed, now, { ...opts, targets: targets.map((t) => t.name) }, bkpVersion());
  return { plan, storages };
}

export function hasChanges(plan: Plan): boolean {
  return plan.actions.length > 0;
}
