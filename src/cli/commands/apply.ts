import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import type { Plan } from '../../planner/types.js';
import type { Policy } from '../../policy/types.js';
import { clockFrom, loadPolicyOrFail, selectTargets, stdoutStyle, write } from '../context.js';
import { observeAndPlan, startLockedRun, type LockedRun } from '../planning.js';
import { renderPlanText } from '../../render/plan-text.js';
import { ApplyReporter } from '../../render/apply-events.js';
import { applyPlan } from '../../apply/apply.js';
import { UserError } from '../../core/diagnostics.js';
import type { Clock } from '../../core/clock.js';

export interface ApplyArgs {
  plan?: string;
  config: string;
  configGiven: boolean;
  now?: string;
  autoApprove: boolean;
  target?: string[];
  parallelism: number;
  json: boolean;
  allowMassPrune: boolean;
}

/**
 * `bkp apply [PLAN]`: locks the targets first, then applies a saved plan (refused when the
 * policy or the storage changed since), or plans and applies after a yes.
 */
export async function applyCommand(args: ApplyArgs): Promise<number> {
  const clock = clockFrom(args);
  const style = stdoutStyle();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const reporter = new ApplyReporter(process.stdout, style, args.json ? 'json' : 'text', process.stdout.isTTY === true && !args.json);
  const warn = (message: string) => reporter.onEvent({ type: 'warning', message });

  const saved = args.plan ? await readPlanFile(args.plan) : undefined;
  const policy = await loadPolicyOrFail(saved && !args.configGiven ? saved.policy_file : args.config);
  const targets = selectTargets(policy, saved ? saved.targets : args.target);
  const run = await startLockedRun(policy, targets, 'apply', warn);
  try {
    let plan: Plan;
    if (saved) {
      if (policy.digest !== saved.policy_digest) {
        throw new UserError(`Saved plan is stale: the policy ${policy.file} changed since ${args.plan} was made. Run \`bkp plan --out ${args.plan}\` again.`);
      }
      const fresh = await observeAndPlan(policy, targets, new Date(saved.now), { allowMassPrune: args.allowMassPrune }, log, run);
      if (fresh.plan.observed_fingerprint !== saved.observed_fingerprint) {
        throw new UserError(`Saved plan is stale: the backups in storage changed since ${args.plan} was made (another apply, a manual change). Run \`bkp plan --out ${args.plan}\` again.`);
      }
      plan = saved;
    } else {
      ({ plan } = await observeAndPlan(policy, targets, clock.now(), { allowMassPrune: args.allowMassPrune }, log, run));
      if (!args.json) write(renderPlanText(plan, style));
      if (plan.diagnostics.some((d) => d.severity === 'error')) return 1;
      if (plan.actions.length === 0) return plan.diagnostics.some((d) => d.code.startsWith('observe.')) ? 1 : 0;
      if (!args.autoApprove) await confirm();
    }
    return await runApply(policy, plan, run, clock, args, reporter);
  } finally {
    await run.locks.release();
  }
}

async function runApply(policy: Policy, plan: Plan, run: LockedRun, clock: Clock, args: ApplyArgs, reporter: ApplyReporter): Promise<number> {
  const outcome = await applyPlan({ policy, plan, runId: run.runId, storages: run.storages, clock, parallelism: args.parallelism, command: 'apply', onEvent: reporter.onEvent });
  reporter.finish(outcome.results);
  // The other targets were applied; a target or storage that could not be observed still fails the run.
  const unobserved = plan.diagnostics.filter((d) => d.code.startsWith('observe.'));
  for (const d of unobserved) reporter.onEvent({ type: 'warning', message: `not applied: ${d.summary}` });
  return outcome.ok && unobserved.length === 0 ? 0 : 1;
}

async function readPlanFile(file: string): Promise<Plan> {
  let plan: Plan;
  try {
    plan = JSON.parse(await readFile(file, 'utf8')) as Plan;
  } catch (err) {
    throw new UserError(`cannot read the plan file ${file}: ${(err as Error).message}`);
  }
  if (plan.format_version !== '1' || !Array.isArray(plan.actions)) {
    throw new UserError(`${file} is not a bkp plan file (format_version "1" expected)`);
  }
  return plan;
}

/** Terraform's prompt; without a terminal to answer it, refuse rather than hang or assume yes. */
async function confirm(): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new UserError('apply needs confirmation but stdin is not a terminal: run `bkp apply --auto-approve`, or save a plan with `bkp plan --out PLAN` and run `bkp apply PLAN`');
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
  rl.close();
  if (answer.trim() !== 'yes') throw new UserError('Apply cancelled.');
}
