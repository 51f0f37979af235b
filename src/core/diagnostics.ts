/** Where a problem is: a file position, or a named thing (target, storage, server). */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

/** A problem found while reading, planning or applying: a value, collected and shown together. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  /** Stable machine code, e.g. `schema.unknown_key`, `semantic.bad_cron`, `plan.mass_prune`. */
  code: string;
  /** One line, the message a user reads first. */
  summary: string;
  /** Optional longer explanation or hint. */
  detail?: string;
  location?: SourceLocation;
  /** JSON-pointer-ish path of the field, e.g. `targets.store.schedule.cron`. */
  path?: string;
  target?: string;
}

/** An error the user caused (bad flag, bad policy, stale plan): exit 1 with this message, no stack. */
export class UserError extends Error {
  readonly diagnostics: Diagnostic[];
  readonly exitCode: number;
  constructor(message: string, diagnostics: Diagnostic[] = [], exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.diagnostics = diagnostics;
    this.exitCode = exitCode;
  }
}

export function formatLocation(loc: SourceLocation | undefined): string {
  return loc ? `${loc.file}:${loc.line}:${loc.col}` : '';
}

/** `FILE:LINE:COL: message` (DESIGN §1), or just the message when there is no position. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = formatLocation(d.location);
  const sev = d.severity === 'warning' ? 'warning: ' : '';
  const head = where ? `${where}: ${sev}${d.summary}` : `${sev}${d.summary}`;
  return d.detail ? `${head}\n  ${d.detail}` : head;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}
