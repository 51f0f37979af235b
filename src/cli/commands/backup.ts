import { clockFrom, loadPolicyOrFail, selectTargets, stdoutStyle } from '../context.js';
import { observeAndPlan, startLockedRun } from '../planning.js';
import { ApplyReporter } from '../../render/apply-events.js';
import { applyPlan } from '../../apply/apply.js';
import { UserError } from '../../core/diagnostics.js';

export interface BackupArgs {
  config: string;
  now?: string;
  target: string;
  unit?: string[];
  json: boolean;
}

/** `bkp backup T`: an on-demand backup now, whatever the schedule; retention runs with the next apply. */
export async function backupCommand(args: BackupArgs): Promise<number> {
  const policy = await loadPolicyOrFail(args.config);
  const [target] = selectTargets(policy, [args.target]);
  const clock = clockFrom(args);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const reporter = new ApplyReporter(process.stdout, stdoutStyle(), args.json ? 'json' : 'text', process.stdout.isTTY === true && !args.json);
  const run = await startLockedRun(policy, [target!], 'backup', (message) => reporter.onEvent({ type: 'warning', message }));
  try {
    const { plan } = await observeAndPlan(policy, [target!], clock.now(), { onDemand: { target: args.target, units: args.unit } }, log, run);
    const errors = plan.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0) throw new UserError(errors.map((d) => d.summary).join('\n'));
    // An engine that could not be reached explains an empty or partial plan better than "no unit".
    const unobserved = plan.diagnostics.filter((d) => d.code.startsWith('observe.'));
    if (unobserved.length > 0 && plan.actions.length === 0) throw new UserError(unobserved.map((d) => d.summary).join('\n'));
    for (const d of plan.diagnostics.filter((x) => x.severity === 'warning')) reporter.onEvent({ type: 'warning', message: d.summary });
    const missing = (args.unit ?? []).filter((u) => !plan.actions.some((a) => a.unit === u));
    if (missing.length > 0) {
      throw new UserError(`target ${args.target} has no unit ${missing.map((u) => `"${u}"`).join(', ')}`);
    }
    if (plan.actions.length === 0) throw new UserError(`target ${args.target}: nothing to back up (no unit found)`);
    const outcome = await applyPlan({ policy, plan, runId: run.runId, storages: run.storages, clock, parallelism: 1, command: 'backup', onEvent: reporter.onEvent });
    reporter.finish(outcome.results);
    return outcome.ok ? 0 : 1;
  } finally {
    await run.locks.release();
  }
}
