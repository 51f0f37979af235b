import type { Plan } from '../planner/types.js';
import { redact } from '../core/secrets.js';

/** The plan's JSON form (`schemas/plan.schema.json`): the versioned contract every view reads. */
export function renderPlanJson(plan: Plan): string {
  return `${redact(JSON.stringify(plan))}\n`;
}
