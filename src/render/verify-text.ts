import type { ChalkInstance } from 'chalk';
import type { IncompleteArtifact } from '../planner/types.js';
import { redact } from '../core/secrets.js';

/** The outcome of verifying one backup. */
export interface VerifyResult {
  storage: string;
  target: string;
  unit: string;
  id: string;
  started_at: string;
  ok: boolean;
  problems: string[];
  details: string[];
}

export function renderVerifyLine(r: VerifyResult, style: ChalkInstance): string {
  const head = `${r.storage}: ${r.target}/${r.unit} ${r.id} (${r.started_at})`;
  return redact(r.ok ? `${style.green('OK')}      ${head}${r.details.length ? ` — ${r.details.join('; ')}` : ''}` : `${style.red('FAILED')}  ${head}: ${r.problems.join('; ')}`);
}

export function renderVerifySummary(results: VerifyResult[], incomplete: IncompleteArtifact[], deep: boolean, style: ChalkInstance): string {
  const failed = results.filter((r) => !r.ok).length;
  const lines = incomplete.map((i) => style.yellow(`INCOMPLETE ${i.storage}: ${i.key} (${i.why}; not a good backup, the next apply cleans it up)`));
  lines.push(failed ? style.red.bold(`${failed} of ${results.length} backups failed verification.`) : style.green.bold(`${results.length} backups verified${deep ? ' (deep)' : ''}.`));
  return redact(lines.join('\n'));
}

export function renderVerifyJson(results: VerifyResult[], incomplete: IncompleteArtifact[]): string {
  const failed = results.filter((r) => !r.ok).length;
  return redact(JSON.stringify({ ok: failed === 0, checked: results.length, failed, results, incomplete }, null, 2));
}
