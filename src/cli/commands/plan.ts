import { writeFile } from 'node:fs/promises';
import { clockFrom, loadPolicyOrFail, selectTargets, stdoutStyle, write, stderrStyle } from '../context.js';
import { observeAndPlan, hasChanges } from '../planning.js';
import { renderPlanText } from '../../render/plan-text.js';
import { renderPlanJson } from '../../render/plan-json.js';
import { UserError } from '../../core/diagnostics.js';

export interface PlanArgs {
  config: string;
  now?: string;
  out?: string;
  format: 'text' | 'json' | 'markdown';
  detailedExitcode: boolean;
  target?: string[];
  allowMassPrune: boolean;
}

/** `bkp plan`: observe, plan, print; exit 2 with --detailed-exitcode when there are changes. */
export async function planCommand(args: PlanArgs): Promise<number> {
  const policy = await loadPolicyOrFail(args.config);
  const targets = selectTargets(policy, args.target);
  const clock = clockFrom(args);
  const log = (line: string) => process.stderr.write(`${stderrStyle().dim(line)}\n`);
  const { plan } = await observeAndPlan(policy, targets, clock.now(), { allowMassPrune: args.allowMassPrune }, log);
  if (args.out) {
    try {
      await writeFile(args.out, renderPlanJson(plan));
    } catch (err) {
      throw new UserError(`cannot write the plan file ${args.out}: ${(err as Error).message}`);
    }
  }
  if (args.format === 'markdown') {
    // Posted as is in a pull request: nothing but the Markdown on stdout, errors included.
    const { renderPlanMarkdown } = await import('../../render/plan-markdown.js');
    write(renderPlanMarkdown(plan));
  } else {
    write(args.format === 'json' ? renderPlanJson(plan) : renderPlanText(plan, stdoutStyle()));
    if (args.out && args.format === 'text') write(`\nSaved the plan to ${args.out}. To perform exactly these actions, run:\n  bkp apply ${args.out}`);
  }
  if (plan.diagnostics.some((d) => d.severity === 'error')) return 1;
  // A target or storage that could not be observed is not "no changes": CI must notice.
  if (plan.diagnostics.some((d) => d.code.startsWith('observe.'))) return 1;
  return args.detailedExitcode && hasChanges(plan) ? 2 : 0;
}
