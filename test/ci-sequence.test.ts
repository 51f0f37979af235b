import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { bkp, lastLine, ROOT, tempDir } from './helpers/cli.js';

/**
 * The bkp commands of examples/ci/github-actions.yml, in order. The first test reads them out of
 * the workflow (and the GitLab example), so the workflow cannot drift from what runs below.
 */
const REVIEW = {
  validate: 'validate -c bkp.yaml --format github',
  diff: 'diff --base-ref "origin/$BASE_REF" -c bkp.yaml --format markdown',
  plan: 'plan -c bkp.yaml --format markdown --out plan.bin',
};
const APPLY = {
  validate: 'validate -c bkp.yaml --format github',
  plan: 'plan -c bkp.yaml --out tonight.plan --detailed-exitcode',
  apply: 'apply --json tonight.plan',
};

/** `npx bkp …` in the shell scripts of a CI file, up to a redirection, a pipe or the end of the line. */
function bkpCommands(scripts: string[]): string[] {
  return scripts.flatMap((s) => [...s.matchAll(/npx bkp ([^>|\n]+)/g)].map((m) => m[1]!.trim()));
}

const argv = (command: string) => command.split(' ');

describe('the CI examples, run locally against the quickstart policy', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  // The quickstart policy as the repository's bkp.yaml, so the commands run exactly as the
  // workflow writes them (`-c bkp.yaml`); its paths are relative to the file, so they move with it.
  cpSync(path.join(ROOT, 'examples'), path.join(t.dir, 'examples'), { recursive: true });
  const quickstart = readFileSync(path.join(ROOT, 'examples', 'quickstart.yaml'), 'utf8');
  const policy = quickstart.replace('path: ../backups', 'path: ./backups').replace('paths: [./sample-data]', 'paths: [./examples/sample-data]');
  writeFileSync(path.join(t.dir, 'bkp.yaml'), policy);
  // The quickstart schedule fires at 02:00 UTC. BKP_NOW, not --now, so the commands stay the workflow's.
  const NOW = '2026-11-21T02:30:00Z';
  const LATER = '2026-11-22T02:30:00Z';
  const run = (command: string, now = NOW) => bkp(argv(command), { cwd: t.dir, env: { BKP_NOW: now } });

  it('the examples run these commands, and pin their actions by major version', () => {
    expect(policy).not.toBe(quickstart);
    expect(policy).toContain('path: ./backups');
    expect(policy).toContain('[./examples/sample-data]');

    type Step = { run?: string; uses?: string };
    const gh = parse(readFileSync(path.join(ROOT, 'examples', 'ci', 'github-actions.yml'), 'utf8')) as {
      on: Record<string, unknown>;
      jobs: Record<string, { steps: Step[]; concurrency?: { group: string; 'cancel-in-progress': boolean } }>;
    };
    expect(Object.keys(gh.on).sort()).toEqual(['pull_request', 'push', 'schedule', 'workflow_dispatch']);
    const runs = (job: string) => gh.jobs[job]!.steps.map((s) => s.run ?? '');
    expect(bkpCommands(runs('review'))).toEqual([REVIEW.validate, REVIEW.diff, REVIEW.plan]);
    expect(bkpCommands(runs('apply'))).toEqual([APPLY.validate, APPLY.plan, APPLY.apply]);
    expect(gh.jobs.apply!.concurrency).toEqual({ group: 'bkp-apply', 'cancel-in-progress': false });
    for (const job of Object.values(gh.jobs)) for (const s of job.steps) if (s.uses) expect(s.uses).toMatch(/^[\w.-]+\/[\w.-]+@v\d+$/);

    const gl = parse(readFileSync(path.join(ROOT, 'examples', 'ci', 'gitlab-ci.yml'), 'utf8'), { merge: true }) as Record<string, { script?: string[]; resource_group?: string }>;
    expect(bkpCommands(gl['bkp:validate']!.script!)).toEqual(['validate -c bkp.yaml']);
    expect(bkpCommands(gl['bkp:plan']!.script!)).toEqual(['diff --base-ref "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME" -c bkp.yaml --format markdown', REVIEW.plan]);
    expect(bkpCommands(gl['bkp:apply']!.script!)).toEqual(['validate -c bkp.yaml', APPLY.plan, APPLY.apply]);
    expect(gl['bkp:apply']!.resource_group).toBe('bkp-apply');
  });

  it('pull request: validate --format github prints no annotation for a valid policy', async () => {
    const v = await run(REVIEW.validate);
    expect(v.stderr).toBe('');
    expect(v.stdout).toBe('');
    expect(v.code).toBe(0);
  });

  it('pull request: diff against the base branch names the retention change', async () => {
    // The workflow's checkout has origin/<base>; here a repository whose origin/main is the base.
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=bkp test', '-c', 'user.email=test@example.org', ...args], { cwd: t.dir, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', 'bkp.yaml');
    git('commit', '-q', '-m', 'base');
    git('update-ref', 'refs/remotes/origin/main', 'HEAD');
    const file = path.join(t.dir, 'bkp.yaml');
    writeFileSync(file, policy.replace('keep_daily: 7', 'keep_daily: 3'));
    try {
      const d = await run(REVIEW.diff.replace('"origin/$BASE_REF"', 'origin/main'));
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout.split('\n')[0]).toMatch(/^\*\*bkp diff\*\*: /);
      expect(d.stdout).toMatch(/\| retention\.keep_daily \| 7 \| 3 \|/);
    } finally {
      writeFileSync(file, policy);
    }
  });

  it('pull request: plan --format markdown --out prints the comment and saves the plan', async () => {
    const p = await run(REVIEW.plan);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout.split('\n')[0]).toBe('**bkp plan**: 1 to create, 0 to change, 0 to delete');
    expect(p.stdout).toContain('### sample');
    // Only the comment on stdout: the workflow redirects it into plan.md and posts that as is.
    expect(p.stdout).not.toContain('Saved the plan');
    expect(p.stdout.length).toBeLessThan(65_000);
    expect(existsSync(path.join(t.dir, 'plan.bin'))).toBe(true);
  });

  it('schedule: plan --detailed-exitcode exits 2, apply PLAN exits 0, the next plan has no changes', async () => {
    expect((await run(APPLY.validate)).code).toBe(0);
    const p = await run(APPLY.plan);
    expect(p.code, p.stderr).toBe(2);
    const a = await run('apply tonight.plan');
    expect(a.code, a.stderr).toBe(0);
    expect(lastLine(a.stdout)).toBe('Apply complete! Resources: 1 created, 0 changed, 0 deleted.');
    const again = await run(APPLY.plan);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^No changes\.$/m);
  });

  it('schedule, the next night: apply --json writes one JSON object per line, ending with the summary', async () => {
    const p = await run(APPLY.plan, LATER);
    expect(p.code, p.stderr).toBe(2);
    const a = await run(APPLY.apply, LATER);
    expect(a.code, a.stderr).toBe(0);
    const events = a.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; ok?: boolean; action?: { kind: string; target: string } });
    const types = events.map((e) => e.type);
    expect(types).toContain('action_started');
    expect(types).toContain('action_finished');
    expect(types).not.toContain('action_failed');
    expect(events.find((e) => e.type === 'action_started')!.action).toMatchObject({ kind: 'backup', target: 'sample' });
    expect(events.at(-1)).toMatchObject({ type: 'summary', ok: true, created: 1, failed: 0 });
    expect((await run(APPLY.plan, LATER)).code).toBe(0);
  });
});
