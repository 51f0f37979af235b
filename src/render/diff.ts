import type { ChalkInstance } from 'chalk';
import type { FieldChange, PolicyDiff, TargetDiff } from '../planner/policy-diff.js';
import { redact } from '../core/secrets.js';

function show(v: unknown): string {
  if (v === undefined) return '(none)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function fieldLine(f: FieldChange): string {
  if (f.old === undefined) return `${f.field}: ${show(f.new)}`;
  if (f.new === undefined) return `${f.field}: ${show(f.old)} → (removed)`;
  return `${f.field}: ${show(f.old)} → ${show(f.new)}`;
}

/** What a change does to existing backups; `loss` marks the lines a reviewer must not miss. */
function impactLines(t: TargetDiff): { text: string; loss: boolean }[] {
  const out: { text: string; loss: boolean }[] = [];
  const i = t.impact;
  if (t.change === 'removed') out.push({ text: `its ${t.orphaned ?? '?'} existing backup(s) are left alone (bkp never prunes a target it no longer manages)`, loss: false });
  if (!i) return out;
  for (const u of i.units.filter((x) => x.lost > 0)) out.push({ text: `${u.lost} of ${u.existing} backups of ${t.target}/${u.unit} in ${u.storage} would be pruned (${u.remaining} remain)`, loss: true });
  for (const u of i.unitsLeftEmpty) out.push({ text: `unit ${u} would be left with no backup`, loss: true });
  for (const s of i.storagesDropped) out.push({ text: `storage ${s} stops receiving backups (what it holds stays)`, loss: true });
  return out;
}

function summaryText(d: PolicyDiff): string {
  const { added, removed, changed, lost } = d.summary;
  if (added + removed + changed === 0 && d.storages.length === 0) return 'No changes.';
  const impact = d.impact_unknown ? `impact unknown (${d.impact_unknown})` : lost > 0 ? `${lost} existing backup(s) would be pruned` : 'no existing backup would be pruned';
  return `Diff: ${added} target(s) added, ${changed} changed, ${removed} removed; ${impact}.`;
}

/** The policy diff for a terminal, Terraform-style: `+` added, `~` changed, `-` removed. */
export function renderDiffText(d: PolicyDiff, style: ChalkInstance): string {
  const out: string[] = [];
  const sym = { added: style.green('+'), changed: style.yellow('~'), removed: style.red('-') };
  for (const t of d.targets) {
    out.push(`${sym[t.change]} target ${style.bold(t.target)}`);
    for (const f of t.fields) out.push(`    ${fieldLine(f)}`);
    for (const l of impactLines(t)) out.push(l.loss ? style.red(`    ! ${l.text}`) : `    ! ${l.text}`);
  }
  for (const s of d.storages) {
    out.push(`${sym[s.change]} storage ${style.bold(s.storage)}`);
    for (const f of s.fields) out.push(`    ${fieldLine(f)}`);
  }
  if (out.length) out.push('');
  out.push(style.bold(summaryText(d)));
  return redact(out.join('\n'));
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/`/g, "'").replace(/\n/g, ' ');

/** The policy diff for a pull-request comment: the damage first, then a table per target. */
export function renderDiffMarkdown(d: PolicyDiff): string {
  const out: string[] = [];
  const lost = d.summary.lost;
  out.push(`${lost > 0 ? '⚠️ ' : ''}**bkp diff**: ${summaryText(d).replace(/^Diff: /, '')}`, '');
  const icon = { added: '➕', changed: '✏️', removed: '➖' };
  for (const t of d.targets) {
    out.push(`### ${icon[t.change]} target \`${t.target}\` (${t.change})`);
    const impact = impactLines(t);
    for (const l of impact) out.push(l.loss ? `- ⚠️ **${cell(l.text)}**` : `- ℹ️ ${cell(l.text)}`);
    if (t.fields.length) {
      out.push('', '| field | old | new |', '|---|---|---|');
      for (const f of t.fields) out.push(`| ${cell(f.field)} | ${cell(f.old === undefined ? '' : show(f.old))} | ${cell(f.new === undefined ? '' : show(f.new))} |`);
    }
    out.push('');
  }
  for (const s of d.storages) {
    out.push(`### ${icon[s.change]} storage \`${s.storage}\` (${s.change})`);
    if (s.fields.length) {
      out.push('', '| field | old | new |', '|---|---|---|');
      for (const f of s.fields) out.push(`| ${cell(f.field)} | ${cell(f.old === undefined ? '' : show(f.old))} | ${cell(f.new === undefined ? '' : show(f.new))} |`);
    }
    out.push('');
  }
  return redact(out.join('\n').trimEnd());
}

export function renderDiffJson(d: PolicyDiff): string {
  return redact(JSON.stringify(d, null, 2));
}
