import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bkp, lastLine, ROOT, tempDir } from './helpers/cli.js';

/**
 * The command sequence of examples/ci/github-actions.yml (and gitlab-ci.yml), run locally through
 * the real CLI against a copy of examples/quickstart.yaml: what a pull request runs (validate,
 * diff, plan as Markdown), then what the scheduled job runs (plan --detailed-exitcode, apply the
 * saved plan), twice, the second time with `apply --json` as the CI log reads it.
 */
describe('the CI examples, run locally against the quickstart policy', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  cpSync(path.join(ROOT, 'examples'), path.join(t.dir, 'examples'), { recursive: true });
  const config = 'examples/quickstart.yaml';
  const run = (args: string[]) => bkp(args, { cwd: t.dir });
  // The quickstart schedule fires at 02:00 UTC.
  const NOW = '2026-11-21T02:30:00Z';
  const LATER = '2026-11-22T02:30:00Z';

  it('pull request: validate --format github prints no annotation for a valid policy', async () => {
    const v = await run(['validate', '--format', 'github', '-c', config]);
    expect(v.stderr).toBe('');
    expect(v.stdout).toBe('');
    expect(v.code).toBe(0);
  });

  it('pull request: diff against the base branch (when `bkp diff` exists)', async () => {
    // `bkp diff` comes with another issue. Until `bkp --help` lists it, this step is not run here;
    // the workflow runs it with these flags.
    const help = await run(['--help']);
    if (!/^\s*bkp diff\b/m.test(help.stdout)) return;
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=bkp test', '-c', 'user.email=test@example.org', ...args], { cwd: t.dir, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', config);
    git('commit', '-q', '-m', 'base');
    const file = path.join(t.dir, config);
    const before = readFileSync(file, 'utf8');
    writeFileSync(file, before.replace('keep_daily: 7', 'keep_daily: 3'));
    try {
      const d = await run(['diff', '--base-ref', 'main', '-c', config, '--format', 'markdown']);
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toMatch(/keep_daily/);
    } finally {
      writeFileSync(file, before);
    }
  });

  it('pull request: plan --format markdown --out saves the plan and prints the comment', async () => {
    const p = await run(['plan', '--format', 'markdown', '--out', 'plan.bin', '-c', config, '--now', NOW]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout.split('\n')[0]).toBe('**bkp plan**: 1 to create, 0 to change, 0 to delete');
    expect(p.stdout).toContain('### sample');
    // Only the comment on stdout (it is redirected into plan.md and posted as is).
    expect(p.stdout).not.toContain('Saved the plan');
    expect(p.stdout.length).toBeLessThan(65_000);
    expect(existsSync(path.join(t.dir, 'plan.bin'))).toBe(true);
  });

  it('schedule: plan --out --detailed-exitcode exits 2, apply PLAN exits 0, the next plan has no changes', async () => {
    const p = await run(['plan', '--out', 'tonight.plan', '--detailed-exitcode', '-c', config, '--now', NOW]);
    expect(p.code, p.stderr).toBe(2);
    const a = await run(['apply', 'tonight.plan', '--now', NOW]);
    expect(a.code, a.stderr).toBe(0);
    expect(lastLine(a.stdout)).toBe('Apply complete! Resources: 1 created, 0 changed, 0 deleted.');
    const again = await run(['plan', '--detailed-exitcode', '-c', config, '--now', NOW]);
    expect(again.code, again.stderr).toBe(0);
    expect(lastLine(again.stdout)).toBe('No changes.');
  });

  it('schedule, the next night: apply --json writes one JSON object per line, ending with the summary', async () => {
    const p = await run(['plan', '--out', 'tonight.plan', '--detailed-exitcode', '-c', config, '--now', LATER]);
    expect(p.code, p.stderr).toBe(2);
    const a = await run(['apply', '--json', 'tonight.plan', '--now', LATER]);
    expect(a.code, a.stderr).toBe(0);
    const lines = a.stdout.trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l) as { type: string; ok?: boolean; action?: { kind: string; target: string } });
    const types = events.map((e) => e.type);
    expect(types).toContain('action_started');
    expect(types).toContain('action_finished');
    expect(types).not.toContain('action_failed');
    expect(events.find((e) => e.type === 'action_started')!.action).toMatchObject({ kind: 'backup', target: 'sample' });
    expect(events.at(-1)).toMatchObject({ type: 'summary', ok: true, created: 1, failed: 0 });
    const after = await run(['plan', '--detailed-exitcode', '-c', config, '--now', LATER]);
    expect(after.code, after.stderr).toBe(0);
  });
});
