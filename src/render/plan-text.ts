import type { ChalkInstance } from 'chalk';
import type { Action, Op, Plan } from '../planner/types.js';
import { isResourceAction } from '../planner/types.js';
import { resourceAddress, resourceRows } from './resource-fields.js';
import { formatBytes } from './style.js';
import { redact } from '../core/secrets.js';

const SYMBOL: Record<Op, string> = { create: '+', update: '~', delete: '-' };

function colorFor(style: ChalkInstance, op: Op): (s: string) => string {
  return op === 'create' ? style.green : op === 'update' ? style.yellow : style.red;
}

/** Fields shown in the block of each action, in order: what a reviewer needs, nothing more. */
export function actionFields(a: Action): [string, string][] {
  if (isResourceAction(a)) return resourceRows(a).map((r) => [r.key, r.from !== undefined ? `${r.from} -> ${r.value}` : r.value]);
  switch (a.kind) {
    case 'backup':
      return [
        ['storage', a.storage],
        ['kind', a.backup_kind],
        ['engine', a.after.engine],
      ];
    case 'copy':
      return [
        ['storage', a.storage],
        ['from', a.source.storage],
        ['id', a.source.id ?? '(the backup this apply takes)'],
        ['kind', a.source.kind],
        ...(a.source.started_at ? ([['started_at', a.source.started_at]] as [string, string][]) : []),
      ];
    case 'prune':
      return [
        ['storage', a.storage],
        ['id', a.before.id],
        ['kind', a.before.kind],
        ['started_at', a.before.started_at],
        ['size', formatBytes(a.before.size)],
      ];
    case 'cleanup':
      return [
        ['storage', a.storage],
        ['key', a.before.key],
        ['size', formatBytes(a.before.size)],
        ...(a.before.modified_at ? ([['modified_at', a.before.modified_at]] as [string, string][]) : []),
      ];
    default: {
      const never: never = a;
      return never;
    }
  }
}

function address(a: Action): string {
  if (isResourceAction(a)) return resourceAddress(a);
  switch (a.kind) {
    case 'backup':
      return `backup "${a.target}/${a.unit}"`;
    case 'copy':
      return `copy "${a.target}/${a.unit}/${a.source.id ?? 'new'}"`;
    case 'prune':
      return `backup "${a.target}/${a.unit}/${a.before.id}"`;
    case 'cleanup':
      return `incomplete "${a.before.key}"`;
    default: {
      const never: never = a;
      return never;
    }
  }
}

/**
 * The plan as Terraform users read it: one block per action with `+`, `~`, `-`, a comment with
 * the reason, then notes, diagnostics and the summary line. Rendered from the plan's JSON form.
 */
export function renderPlanText(plan: Plan, style: ChalkInstance): string {
  const out: string[] = [];
  if (plan.actions.length > 0) {
    out.push(`bkp will perform the following actions (now ${plan.now}):`, '');
    for (const a of plan.actions) {
      const c = colorFor(style, a.op);
      const sym = SYMBOL[a.op];
      out.push(style.bold(`  # ${a.target}${a.unit ? `/${a.unit}` : ''}: ${a.reason}`));
      out.push(c(`  ${sym} ${address(a)} {`));
      if (isResourceAction(a)) {
        // Terraform's update block: `~` on the fields that change, the others shown for context.
        const rows = resourceRows(a);
        const width = Math.max(...rows.map((r) => r.key.length));
        for (const r of rows) {
          if (a.op !== 'update') out.push(c(`      ${sym} ${r.key.padEnd(width)} = ${r.value}`));
          else if (r.from !== undefined) out.push(c(`      ~ ${r.key.padEnd(width)} = ${r.from} -> ${r.value}`));
          else out.push(`        ${r.key.padEnd(width)} = ${r.value}`);
        }
        out.push(c('    }'), '');
        continue;
      }
      const fs = actionFields(a);
      const width = Math.max(...fs.map(([k]) => k.length));
      for (const [k, v] of fs) out.push(c(`      ${sym} ${k.padEnd(width)} = "${v}"`));
      out.push(c('    }'), '');
    }
  }
  for (const n of plan.notes) out.push(style.yellow(`Note: ${n.target}${n.unit ? `/${n.unit}` : ''}: ${n.message}`));
  for (const d of plan.diagnostics) {
    const head = d.severity === 'error' ? style.red.bold('Error: ') : style.yellow.bold('Warning: ');
    out.push(`${head}${d.summary}${d.detail ? `\n  ${d.detail}` : ''}`);
  }
  if (plan.notes.length > 0 || plan.diagnostics.length > 0) out.push('');
  out.push(summaryLine(plan, style));
  return redact(out.join('\n'));
}

export function summaryLine(plan: Plan, style: ChalkInstance): string {
  const { create, update, delete: del } = plan.summary;
  if (create + update + del === 0) return style.bold('No changes.');
  return style.bold(`Plan: ${create} to create, ${update} to change, ${del} to delete.`);
}
