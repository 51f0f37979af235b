import { loadPolicy } from '../../policy/load.js';
import { renderDiagnostics } from '../../render/diagnostics.js';
import { hasErrors } from '../../core/diagnostics.js';
import { write } from '../output.js';

/** `bkp validate`: every problem of the policy at once, as text, JSON or GitHub annotations. */
export async function validateCommand(args: { config: string; format: 'text' | 'json' | 'github' }): Promise<number> {
  const { diagnostics } = await loadPolicy(args.config, { env: process.env });
  const rendered = renderDiagnostics(diagnostics, args.format);
  if (args.format === 'text' && diagnostics.length === 0) write(`${args.config}: valid`);
  else if (rendered) write(rendered);
  return hasErrors(diagnostics) ? 1 : 0;
}
