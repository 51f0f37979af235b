import type { Diagnostic } from '../core/diagnostics.js';
import type { Action, Op, Plan } from '../planner/types.js';
import { actionFields } from './plan-text.js';
import { isResourceAction } from '../planner/types.js';
import { resourceAddress } from './resource-fields.js';
import { redact } from '../core/secrets.js';

/**
 * The plan as a pull-request or merge-request comment (GitHub and GitLab Markdown): the summary
 * line first, then errors and warnings, then one compact table per target (sorted by name) with
 * prunes highlighted, and every action's full details collapsed in `<details>`. Pure: the same
 * plan always renders byte-identical. Never longer than `maxChars` (GitHub refuses comments over
 * 65,536 characters): whole rows and targets are cut, and a last line says how many are not shown.
 */
export interface PlanMarkdownOptions {
  /** The result is always shorter than this. Default 65,000. */
  maxChars?: number;
}

export const DEFAULT_MAX_CHARS = 65_000;

const SYMBOL: Record<Op, string> = { create: '+', update: '~', delete: '-' };
/** In a ```diff block GitHub and GitLab colour `+` green, `-` red and `!` orange. */
const DIFF_SYMBOL: Record<Op, string> = { create: '+', update: '!', delete: '-' };

export function renderPlanMarkdown(plan: Plan, opts: PlanMarkdownOptions = {}): string {
  const maxChars = opts.maxChars ?? DEFAULT_MAX_CHARS;

  // The head is always shown: it says what the plan does even when nothing else fits.
  const head = [summaryLine(plan), '', metaLine(plan)].join('\n');
  const diagnostics = [...plan.diagnostics.filter((d) => d.severity === 'error'), ...plan.diagnostics.filter((d) => d.severity === 'warning')];
  const diagnosticBlocks: string[] = [];
  if (diagnostics.some((d) => d.severity === 'error')) diagnosticBlocks.push('**bkp apply refuses this plan** until these errors are fixed:\n');
  diagnosticBlocks.push(...diagnostics.map((d) => diagnosticLine(d)));
  const sections = targetSections(plan);
  const unchanged = unchangedLine(plan, sections);
  const total = plan.actions.length;

  // Everything, if it fits. Otherwise rows come before details: whole rows (targets in order)
  // while they fit beside the longest note we might need, then each shown target's details while
  // they still fit. Rows are built only as far as they fit: a plan of 300,000 actions costs a
  // grouping pass, not a 100 MB string.
  const whole = fit(head, diagnosticBlocks, sections, unchanged ? unchanged.length + 2 : 0, maxChars - 1);
  if (whole.complete) return assemble(head, diagnosticBlocks, whole.chosen, unchanged, '');
  const reserve = truncationNote(total, total).length + diagnosticsTail(diagnosticBlocks.length).length + 16;
  const cut = fit(head, diagnosticBlocks, sections, 0, maxChars - reserve);
  const shownRows = cut.chosen.reduce((n, c) => n + c.rows.length, 0);
  const withDetails = cut.chosen.reduce((n, c) => n + (c.details ? c.rows.length : 0), 0);
  const note = [truncationNote(total - shownRows, shownRows - withDetails), diagnosticsTail(diagnosticBlocks.length - cut.shownDiagnostics)]
    .filter((x) => x !== '')
    .join('\n\n');
  const out = assemble(head, diagnosticBlocks.slice(0, cut.shownDiagnostics), cut.chosen, '', note);
  if (out.length < maxChars) return out;
  // Unreachable while redaction only shortens what was measured; the promise holds anyway.
  const last = truncationNote(total, 0);
  return `${out.slice(0, Math.max(0, maxChars - last.length - 4))}\n\n${last}\n`;
}

interface Section {
  target: string;
  /** The heading, the target's counts and its notes. */
  heading: string;
  actions: Action[];
}

interface Chosen {
  section: Section;
  /** The table rows shown: the first actions of the section. */
  rows: string[];
  details: boolean;
}

const TABLE_HEAD = '| | kind | unit | storage | backup | reason |\n|:-:|---|---|---|---|---|';

/** What fits in `budget` characters (separators and the last newline counted exactly): diagnostics, then rows, then details. */
function fit(head: string, diagnosticBlocks: string[], sections: Section[], tail: number, budget: number): { chosen: Chosen[]; shownDiagnostics: number; complete: boolean } {
  let used = head.length + 1 + tail;
  let shownDiagnostics = 0;
  for (const b of diagnosticBlocks) {
    // One part, its lines joined by a newline, after a blank line.
    const size = b.length + (shownDiagnostics === 0 ? 2 : 1);
    if (used + size > budget) break;
    used += size;
    shownDiagnostics++;
  }
  const chosen: Chosen[] = [];
  let complete = shownDiagnostics === diagnosticBlocks.length;
  for (const s of sections) {
    let size = s.heading.length + 2 + (s.actions.length > 0 ? TABLE_HEAD.length + 2 : 0);
    if (used + size > budget) {
      complete = false;
      break;
    }
    const rows: string[] = [];
    for (const a of s.actions) {
      const r = row(a);
      if (used + size + r.length + 1 > budget) break;
      size += r.length + 1;
      rows.push(r);
    }
    if (rows.length === 0 && s.actions.length > 0) {
      complete = false;
      break;
    }
    used += size;
    chosen.push({ section: s, rows, details: false });
    if (rows.length < s.actions.length) {
      complete = false;
      break;
    }
  }
  if (chosen.length < sections.length) complete = false;
  for (const c of chosen) {
    const d = detailsBlock(c.section, c.rows.length);
    if (d === '') continue;
    if (used + d.length + 2 > budget) {
      complete = false;
      continue;
    }
    used += d.length + 2;
    c.details = true;
  }
  return { chosen, shownDiagnostics, complete };
}

function diagnosticsTail(hidden: number): string {
  return hidden > 0 ? `_… and ${hidden} more errors or warnings not shown._` : '';
}

function assemble(head: string, diagnostics: string[], chosen: Chosen[], unchanged: string, note: string): string {
  const parts = [head];
  if (diagnostics.length > 0) parts.push(diagnostics.join('\n'));
  for (const c of chosen) {
    parts.push(c.section.heading);
    if (c.rows.length > 0) parts.push([TABLE_HEAD, ...c.rows].join('\n'));
    if (c.details) parts.push(detailsBlock(c.section, c.rows.length));
  }
  if (unchanged) parts.push(unchanged);
  if (note) parts.push(note);
  return `${redact(parts.join('\n\n'))}\n`;
}

/** `**bkp plan**: 3 to create, 0 to change, 41 to delete ⚠️`, or `**bkp plan**: No changes.` */
function summaryLine(plan: Plan): string {
  const { create, update, delete: del } = plan.summary;
  if (create + update + del === 0) return '**bkp plan**: No changes.';
  return `**bkp plan**: ${create} to create, ${update} to change, ${del} to delete${del > 0 ? ' ⚠️' : ''}`;
}

function metaLine(plan: Plan): string {
  return `<sub>Policy ${htmlCode(plan.policy_file)} (sha256 ${htmlCode(plan.policy_digest.slice(0, 12))}) · now ${escapeHtml(plan.now)} · bkp ${escapeHtml(plan.bkp_version)}</sub>`;
}

function diagnosticLine(d: Diagnostic): string {
  const head = d.severity === 'error' ? '- ❌ **Error:**' : '- ⚠️ **Warning:**';
  return `${head} ${text(d.summary)}${d.detail ? ` — ${text(d.detail)}` : ''}`;
}

/** The targets that have actions or notes, sorted by name (code units, not locale: byte-stable). */
function targetSections(plan: Plan): Section[] {
  const actions = new Map<string, Action[]>();
  const notes = new Map<string, Plan['notes']>();
  for (const a of plan.actions) {
    const l = actions.get(a.target);
    if (l) l.push(a);
    else actions.set(a.target, [a]);
  }
  for (const n of plan.notes) {
    const l = notes.get(n.target);
    if (l) l.push(n);
    else notes.set(n.target, [n]);
  }
  return [...new Set([...actions.keys(), ...notes.keys()])].sort(byCodeUnits).map((target) => {
    const mine = actions.get(target) ?? [];
    const lines = [`### ${text(target)}`];
    if (mine.length > 0) lines.push('', countsLine(mine));
    for (const [i, n] of (notes.get(target) ?? []).entries()) {
      lines.push(...(i === 0 ? [''] : []), `- ℹ️ **Note:** ${n.unit ? `${text(n.unit)}: ` : ''}${text(n.message)}`);
    }
    return { target, heading: lines.join('\n'), actions: mine };
  });
}

function countsLine(actions: Action[]): string {
  const n = (op: Op) => actions.filter((a) => a.op === op).length;
  const prunes = actions.filter((a) => a.kind === 'prune').length;
  const parts = [`${n('create')} to create`, `${n('update')} to change`, `${n('delete')} to delete`];
  return `${parts.join(', ')}${prunes > 0 ? ` (**${prunes} ${prunes === 1 ? 'backup' : 'backups'} pruned** ⚠️)` : ''}`;
}

/** `No changes for `a`, `b`.` when some targets have changes and others none. */
function unchangedLine(plan: Plan, sections: Section[]): string {
  if (plan.actions.length === 0) return '';
  const shown = new Set(sections.map((s) => s.target));
  const rest = plan.targets.filter((t) => !shown.has(t)).sort(byCodeUnits);
  return rest.length > 0 ? `No changes for ${rest.map((t) => code(t, false)).join(', ')}.` : '';
}

function row(a: Action): string {
  const op = a.kind === 'prune' ? '⚠️ **-**' : SYMBOL[a.op];
  const kind = a.kind === 'prune' ? '**prune**' : text(a.kind);
  const unit = a.unit ? code(a.unit, true) : '';
  const storage = isResourceAction(a) ? '' : code(a.storage, true);
  return `| ${op} | ${kind} | ${unit} | ${storage} | ${backupCell(a)} | ${text(a.reason)} |`;
}

function backupCell(a: Action): string {
  if (isResourceAction(a)) return code(a.name, true);
  switch (a.kind) {
    case 'backup':
      return `new ${a.backup_kind === 'on_demand' ? 'on-demand' : 'scheduled'}`;
    case 'copy':
      return a.source.id ? `${code(a.source.id, true)} ${shortTime(a.source.started_at ?? '')} from ${code(a.source.storage, true)}` : `new, from ${code(a.source.storage, true)}`;
    case 'prune':
      return `${code(a.before.id, true)} ${shortTime(a.before.started_at)}${a.before.kind === 'on_demand' ? ' (on-demand)' : ''}`;
    case 'cleanup':
      return `${code(a.before.key, true)}${a.before.modified_at ? ` ${shortTime(a.before.modified_at)}` : ''}`;
    default: {
      const never: never = a;
      return never;
    }
  }
}

/** The target's actions in full, Terraform-like, in a collapsed ```diff block. */
function detailsBlock(s: Section, rows: number): string {
  const actions = s.actions.slice(0, rows);
  if (actions.length === 0) return '';
  const lines: string[] = [];
  for (const a of actions) {
    const sym = DIFF_SYMBOL[a.op];
    if (lines.length > 0) lines.push('');
    lines.push(`# ${oneLine(a.target)}${a.unit ? `/${oneLine(a.unit)}` : ''}: ${oneLine(a.reason)}`);
    lines.push(`${sym} ${address(a)} {`);
    const fs = actionFields(a);
    const width = Math.max(...fs.map(([k]) => k.length));
    for (const [k, v] of fs) lines.push(`${sym}     ${k.padEnd(width)} = ${JSON.stringify(oneLine(v))}`);
    lines.push(`${sym} }`);
  }
  const body = lines.join('\n');
  const fence = '`'.repeat(Math.max(3, longestRun(body, '`') + 1));
  const what = actions.length === 1 ? 'the action' : `the ${actions.length} actions`;
  return `<details><summary>Details of ${what} on ${escapeHtml(s.target)}</summary>\n\n${fence}diff\n${body}\n${fence}\n\n</details>`;
}

function address(a: Action): string {
  if (isResourceAction(a)) return resourceAddress(a);
  switch (a.kind) {
    case 'backup':
      return `backup ${JSON.stringify(oneLine(`${a.target}/${a.unit}`))}`;
    case 'copy':
      return `copy ${JSON.stringify(oneLine(`${a.target}/${a.unit}/${a.source.id ?? 'new'}`))}`;
    case 'prune':
      return `backup ${JSON.stringify(oneLine(`${a.target}/${a.unit}/${a.before.id}`))}`;
    case 'cleanup':
      return `incomplete ${JSON.stringify(oneLine(a.before.key))}`;
    default: {
      const never: never = a;
      return never;
    }
  }
}

function truncationNote(hiddenActions: number, hiddenDetails: number): string {
  const why = '(the plan is too long for a comment); run `bkp plan` for all of it';
  if (hiddenActions > 0) return `_… ${hiddenActions} more ${hiddenActions === 1 ? 'action' : 'actions'} not shown ${why}._`;
  if (hiddenDetails > 0) return `_… the details of ${hiddenDetails} ${hiddenDetails === 1 ? 'action are' : 'actions are'} not shown ${why}._`;
  return '';
}

// --- Escaping. Values are redacted before they are escaped: an escaped secret would no longer match.

function oneLine(s: string): string {
  return redact(s).replace(/\s*[\r\n]+\s*/g, ' ');
}

/** Plain text in a paragraph or a table cell: Markdown punctuation and HTML are shown as typed. */
function text(s: string): string {
  return oneLine(s).replace(/[\\`*_[\]<>|~&]/g, '\\$&');
}

/** A code span that holds any text: a delimiter longer than any backtick run; `|` escaped inside tables. */
function code(s: string, inTable: boolean): string {
  let v = oneLine(s);
  if (inTable) v = v.replace(/\|/g, '\\|');
  const delim = '`'.repeat(longestRun(v, '`') + 1);
  const pad = v.startsWith('`') || v.endsWith('`') ? ' ' : '';
  return `${delim}${pad}${v}${pad}${delim}`;
}

function escapeHtml(s: string): string {
  return oneLine(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function htmlCode(s: string): string {
  return `<code>${escapeHtml(s)}</code>`;
}

function longestRun(s: string, ch: string): number {
  let best = 0;
  let run = 0;
  for (const c of s) {
    run = c === ch ? run + 1 : 0;
    if (run > best) best = run;
  }
  return best;
}

function shortTime(iso: string): string {
  return iso.replace(/:00\.000Z$/, 'Z').replace(/\.000Z$/, 'Z');
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
