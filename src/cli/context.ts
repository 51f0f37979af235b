import type { Policy, Target } from '../policy/types.js';
import { UserError, hasErrors } from '../core/diagnostics.js';
import { makeClock, type Clock } from '../core/clock.js';
import { makeStyle, useColor } from '../render/style.js';
import type { ChalkInstance } from 'chalk';

/** Options every command shares. */
export interface CommonArgs {
  config: string;
  now?: string;
}

export { bkpVersion } from './version.js';

export function clockFrom(args: { now?: string }): Clock {
  return makeClock(args.now ?? process.env.BKP_NOW);
}

export function stdoutStyle(): ChalkInstance {
  return makeStyle(useColor(process.stdout));
}

export function stderrStyle(): ChalkInstance {
  return makeStyle(useColor(process.stderr));
}

/** Loads the policy or throws a UserError carrying every diagnostic; prints warnings to stderr. */
export async function loadPolicyOrFail(file: string): Promise<Policy> {
  const { loadPolicy } = await import('../policy/load.js');
  const { renderDiagnostics } = await import('../render/diagnostics.js');
  const { policy, diagnostics } = await loadPolicy(file, { env: process.env });
  if (!policy || hasErrors(diagnostics)) {
    throw new UserError(`policy ${file} has errors:\n${renderDiagnostics(diagnostics, 'text')}`, diagnostics);
  }
  if (diagnostics.length > 0) process.stderr.write(`${stderrStyle().yellow(renderDiagnostics(diagnostics, 'text'))}\n`);
  return policy;
}

/** The targets named by `--target` (all when none), or an error naming the unknown one. */
export function selectTargets(policy: Policy, names: string[] | undefined): Target[] {
  const all = Object.values(policy.targets).sort((a, b) => a.name.localeCompare(b.name));
  if (!names || names.length === 0) return all;
  for (const n of names) {
    if (!policy.targets[n]) throw new UserError(`unknown target "${n}" in ${policy.file} (targets: ${all.map((t) => t.name).join(', ') || 'none'})`);
  }
  return all.filter((t) => names.includes(t.name));
}

export { write } from './output.js';
