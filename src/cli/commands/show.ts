import { readFile } from 'node:fs/promises';
import type { Plan } from '../../planner/types.js';
import { renderPlanText } from '../../render/plan-text.js';
import { renderPlanJson } from '../../render/plan-json.js';
import { stdoutStyle, write } from '../context.js';
import { UserError } from '../../core/diagnostics.js';

/** `bkp show PLAN`: a saved plan, as text or its JSON. */
export async function showCommand(args: { plan: string; json: boolean }): Promise<number> {
  let plan: Plan;
  try {
    plan = JSON.parse(await readFile(args.plan, 'utf8')) as Plan;
  } catch (err) {
    throw new UserError(`cannot read the plan file ${args.plan}: ${(err as Error).message}`);
  }
  if (plan.format_version !== '1') throw new UserError(`${args.plan} is not a bkp plan file (format_version "1" expected)`);
  write(args.json ? renderPlanJson(plan) : renderPlanText(plan, stdoutStyle()));
  return 0;
}
