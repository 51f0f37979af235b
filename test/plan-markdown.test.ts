import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, registerSecret } from '../src/core/secrets.js';
import { makePlan } from '../src/planner/plan.js';
import type { BackupRecord, ObservedState, Plan, PlanOptions } from '../src/planner/types.js';
import type { Policy } from '../src/policy/types.js';
import { DEFAULT_MAX_CHARS, renderPlanMarkdown } from '../src/render/plan-markdown.js';
import { ROOT } from './helpers/cli.js';
import { backup, nightly, observed, policyWith } from './helpers/fixtures.js';

const GOLDEN = path.join(ROOT, 'test', 'fixtures', 'plan-markdown');
const NOW = new Date('2026-11-21T23:30:00Z');
const plan = (p: Policy, o: ObservedState, opts: PlanOptions = {}, now = NOW): Plan => makePlan(p, o, now, opts, 'test');

/** Nightly backups with ids that depend only on the target and the day, so the golden files never drift. */
function nights(from: string, days: number, target = 'app'): BackupRecord[] {
  return nightly(from, days).map((b) => backup(b.started_at, { target, id: createHash('sha256').update(`${target} ${b.started_at}`).digest('hex').slice(0, 12) }));
}

/** Compares with test/fixtures/plan-markdown/NAME.md; BKP_UPDATE_GOLDEN=1 rewrites it (review the git diff afterwards). */
function golden(name: string, text: string): void {
  const file = path.join(GOLDEN, `${name}.md`);
  if (process.env.BKP_UPDATE_GOLDEN) writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

afterEach(() => clearSecrets());

describe('bkp plan --format markdown (golden files)', () => {
  it('no changes', () => {
    const md = renderPlanMarkdown(plan(policyWith(), observed([backup('2026-11-21T23:00:00Z', { id: 'aaaa11112222' })])));
    expect(md.split('\n')[0]).toBe('**bkp plan**: No changes.');
    golden('no-changes', md);
  });

  it('first run: a backup per target, a locked target noted, targets sorted by name', () => {
    const o = observed([], { units: { web: ['files'], app: ['files'], db: ['files'] } });
    o.storages[0]!.locks.push({ id: 'db', storage: 'local', holder: 'bkp apply run 7f3e', host: 'cron-1', pid: 4242, created_at: '2026-11-21T23:00:00Z', expires_at: '2026-11-21T23:35:00Z', units: ['db/files'] });
    const md = renderPlanMarkdown(plan(policyWith({ targets: ['web', 'db', 'app'] }), o));
    expect(md.split('\n')[0]).toBe('**bkp plan**: 2 to create, 0 to change, 0 to delete');
    expect(md.indexOf('### app')).toBeLessThan(md.indexOf('### db'));
    expect(md.indexOf('### db')).toBeLessThan(md.indexOf('### web'));
    golden('first-run', md);
  });

  it('a retention change that prunes many: the mass-prune refusal up front, prunes highlighted', () => {
    // Five weeks of nightly backups, retention cut to keep_daily 3: most of them go.
    const o = observed(nights('2026-10-18', 34));
    o.storages[0]!.incomplete.push({ storage: 'local', key: 'app/files/20261120T230000Z-dead0000beef.tar.gz.tmp', target: 'app', unit: 'files', why: 'temporary file', size: 2048, modified_at: '2026-11-20T23:00:05.000Z' });
    const p = plan(policyWith({ retention: { keep_daily: 3 } }), o);
    expect(p.diagnostics.map((d) => d.code)).toEqual(['plan.mass_prune']);
    const md = renderPlanMarkdown(p);
    const lines = md.split('\n');
    expect(lines[0]).toBe(`**bkp plan**: 1 to create, 0 to change, ${p.summary.delete} to delete ⚠️`);
    // The refusal comes before any table.
    expect(md.indexOf('❌ **Error:**')).toBeLessThan(md.indexOf('### app'));
    expect(lines.filter((l) => l.startsWith('| ⚠️ **-** | **prune** |'))).toHaveLength(p.actions.filter((a) => a.kind === 'prune').length);
    expect(md).toContain('<details><summary>');
    golden('mass-prune', md);
  });

  it('a huge plan is cut to fit a comment, with a note', () => {
    const targets = Array.from({ length: 30 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
    const backups = targets.flatMap((t) => nights('2026-05-01', 200, t));
    const p = plan(policyWith({ targets, retention: { keep_daily: 7 } }), observed(backups, { units: Object.fromEntries(targets.map((t) => [t, ['files']])) }), { allowMassPrune: true });
    expect(p.actions.length).toBeGreaterThan(5000);
    const md = renderPlanMarkdown(p);
    expect(md.length).toBeLessThan(DEFAULT_MAX_CHARS);
    const shown = md.split('\n').filter((l) => /^\| (\+|~|-|⚠️ \*\*-\*\*) \|/.test(l)).length;
    expect(md.trimEnd().split('\n').pop()).toBe(`_… ${p.actions.length - shown} more actions not shown (the plan is too long for a comment); run \`bkp plan\` for all of it._`);
    expect(md.split('\n')[0]).toBe(`**bkp plan**: ${p.summary.create} to create, 0 to change, ${p.summary.delete} to delete ⚠️`);
    golden('truncated', md);
  });
});

describe('bkp plan --format markdown: properties', () => {
  const big = () => {
    const targets = ['a', 'b', 'c', 'd'];
    const backups = targets.flatMap((t) => nights('2026-09-01', 60, t));
    return plan(policyWith({ targets, retention: { keep_daily: 5 } }), observed(backups, { units: Object.fromEntries(targets.map((t) => [t, ['files']])) }));
  };

  it('is always shorter than maxChars, whatever maxChars', () => {
    const p = big();
    const full = renderPlanMarkdown(p, { maxChars: 10_000_000 });
    for (const maxChars of [1200, 2000, 3333, 5000, 8000, 12_000, 20_000, 40_000, full.length, full.length + 1]) {
      const md = renderPlanMarkdown(p, { maxChars });
      expect(md.length, `maxChars ${maxChars}`).toBeLessThan(maxChars);
      expect(md.startsWith('**bkp plan**: ')).toBe(true);
      if (md !== full) expect(md).toMatch(/run `bkp plan` for all of it\._\n$/);
    }
    expect(renderPlanMarkdown(p, { maxChars: full.length + 1 })).toBe(full);
  });

  it('cuts whole rows: every <details> is closed and every table row is complete', () => {
    const md = renderPlanMarkdown(big(), { maxChars: 7000 });
    expect(md.split('<details>').length).toBe(md.split('</details>').length);
    for (const l of md.split('\n').filter((x) => x.startsWith('|'))) expect(l.endsWith(' |') || l.endsWith('|')).toBe(true);
    expect(md).toMatch(/_… \d+ more actions not shown/);
  });

  it('renders the same plan byte-identical', () => {
    expect(renderPlanMarkdown(big())).toBe(renderPlanMarkdown(big()));
  });

  it('keeps secrets out, and escapes pipes, backticks and HTML in cells', () => {
    registerSecret('hunter2-secret');
    const p = plan(policyWith(), observed([]));
    const a = p.actions[0]!;
    a.reason = 'due: from postgres://bkp:pw@db/x | `rm -rf` <b>hunter2-secret</b>';
    a.unit = 'odd|unit`name';
    const md = renderPlanMarkdown(p);
    expect(md).not.toContain('hunter2-secret');
    expect(md).not.toContain(':pw@');
    const row = md.split('\n').find((l) => l.startsWith('| + |'))!;
    // Seven pipes delimit six cells: every other pipe is escaped.
    expect(row.replace(/\\\|/g, '').split('|')).toHaveLength(8);
    expect(row).toContain('\\`rm -rf\\`');
    expect(row).toContain('\\<b\\>');
    expect(row).toContain('``odd\\|unit`name``');
  });
});
