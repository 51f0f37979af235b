import type { ChalkInstance } from 'chalk';
import type { BackupKind, IncompleteArtifact } from '../planner/types.js';
import type { RunRecord } from '../apply/run-record.js';
import { formatBytes, formatDuration } from './style.js';
import { redact } from '../core/secrets.js';

/** One row of `bkp list`. */
export interface CatalogEntry {
  storage: string;
  target: string;
  unit: string;
  id: string;
  kind: BackupKind;
  started_at: string;
  finished_at?: string;
  size?: number;
  sha256?: string;
  compression?: string;
  /** The retention rules that keep it; empty: the next apply prunes it. */
  kept_by: string[];
  key: string;
  /** Why the manifest could not be trusted, if so. */
  problem?: string;
}

export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

/** The catalog grouped by target/unit and storage, newest first, with why each backup is kept. */
export function renderCatalogText(entries: CatalogEntry[], incomplete: IncompleteArtifact[], now: Date, style: ChalkInstance): string {
  if (entries.length === 0 && incomplete.length === 0) return 'No backups.';
  const out: string[] = [];
  const groups = new Map<string, CatalogEntry[]>();
  for (const e of entries) groups.set(`${e.target}/${e.unit} in ${e.storage}`, [...(groups.get(`${e.target}/${e.unit} in ${e.storage}`) ?? []), e]);
  for (const [name, list] of groups) {
    out.push(style.bold(`${name} (${list.length} backup${list.length === 1 ? '' : 's'})`));
    const rows = [['ID', 'STARTED', 'AGE', 'KIND', 'SIZE', 'SHA256', 'KEPT BY']];
    for (const e of [...list].reverse()) {
      const age = formatDuration(Math.max(0, now.getTime() - new Date(e.started_at).getTime()));
      const kept = e.problem ? `UNREADABLE MANIFEST: ${e.problem}` : e.kept_by.length ? e.kept_by.join(', ') : 'nothing (pruned by the next apply)';
      rows.push([e.id, e.started_at.replace(/\.\d{3}Z$/, 'Z'), age, e.kind === 'on_demand' ? 'on-demand' : 'scheduled', formatBytes(e.size), e.sha256?.slice(0, 12) ?? '?', kept]);
    }
    const lines = table(rows);
    out.push(style.dim(`  ${lines[0]}`), ...lines.slice(1).map((l) => `  ${l}`), '');
  }
  if (incomplete.length > 0) {
    out.push(style.yellow.bold('Incomplete (never listed as good; the next apply cleans them up):'));
    for (const i of incomplete) out.push(style.yellow(`  ${i.storage}: ${i.key} (${i.why})`));
  }
  return redact(out.join('\n').trimEnd());
}

export function renderRunsText(runs: (RunRecord & { storage: string })[], style: ChalkInstance): string {
  if (runs.length === 0) return 'No runs recorded.';
  const rows = [['RUN', 'STARTED', 'STATUS', 'COMMAND', 'TARGETS', 'ACTIONS', 'STORAGE']];
  for (const r of runs) {
    const failed = r.actions.filter((a) => a.status === 'failed').length;
    rows.push([r.id, r.started_at.replace(/\.\d{3}Z$/, 'Z'), r.status, r.command, r.targets.join(','), `${r.actions.length}${failed ? ` (${failed} failed)` : ''}`, r.storage]);
  }
  const lines = table(rows);
  const errors = runs.flatMap((r) => r.actions.filter((a) => a.error && a.status === 'failed').map((a) => `  ${r.id} ${a.id}: ${a.error}`));
  return redact([style.dim(lines[0]!), ...lines.slice(1).map((l, i) => (runs[i]!.status === 'failed' ? style.red(l) : l)), ...(errors.length ? ['', 'Errors:', ...errors] : [])].join('\n'));
}
