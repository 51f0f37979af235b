import type { Diagnostic } from '../core/diagnostics.js';
import { formatDiagnostic } from '../core/diagnostics.js';
import { redact } from '../core/secrets.js';

export type DiagnosticsFormat = 'text' | 'json' | 'github';

/**
 * Diagnostics for people (`FILE:LINE:COL: message`), for scripts (one JSON document) or for
 * GitHub Actions (workflow commands that annotate the pull request). Every message is redacted.
 */
export function renderDiagnostics(ds: readonly Diagnostic[], format: DiagnosticsFormat): string {
  switch (format) {
    case 'text':
      return ds.map((d) => redact(formatDiagnostic(d))).join('\n');
    case 'json':
      return JSON.stringify(asJson(ds), null, 2);
    case 'github':
      return ds.map(githubCommand).join('\n');
    default: {
      const never: never = format;
      throw new Error(`unknown format ${String(never)}`);
    }
  }
}

function asJson(ds: readonly Diagnostic[]): object {
  const errors = ds.filter((d) => d.severity === 'error').length;
  return {
    valid: errors === 0,
    errors,
    warnings: ds.length - errors,
    diagnostics: ds.map((d) => ({
      ...d,
      summary: redact(d.summary),
      ...(d.detail !== undefined ? { detail: redact(d.detail) } : {}),
    })),
  };
}

// https://docs.github.com/actions/reference/workflow-commands-for-github-actions: data escapes %, CR, LF;
// property values also escape ":" and ",".
function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function githubCommand(d: Diagnostic): string {
  const props: string[] = [];
  if (d.location) {
    props.push(`file=${escapeProperty(d.location.file)}`, `line=${d.location.line}`, `col=${d.location.col}`);
  }
  props.push(`title=${escapeProperty('bkp validate')}`);
  const message = d.detail !== undefined ? `${d.summary}\n${d.detail}` : d.summary;
  return `::${d.severity} ${props.join(',')}::${escapeData(redact(message))}`;
}
