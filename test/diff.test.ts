import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { bkp, ROOT, tempDir } from './helpers/cli.js';
import { artifactKey, manifestKeyFor } from '../src/storage/catalog-keys.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'diff');
const NOW = '2026-11-22T12:00:00Z';

/** Golden comparison; BKP_UPDATE_GOLDEN=1 rewrites the expected file. */
function golden(name: string, actual: string): void {
  const file = path.join(FIX, name);
  if (process.env.BKP_UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

/** 40 nightly backups per target (the catalog as bkp writes it: names are all a plan reads). */
function catalog(dir: string): void {
  for (const target of ['app', 'volumes', 'legacy']) {
    for (let d = 0; d < 40; d++) {
      const at = new Date(Date.UTC(2026, 9, 13 + d, 23, 0));
      const key = artifactKey(target, 'files', at, (target.length * 1000 + d).toString(16).padStart(12, '0'), 'scheduled', 'tar.gz');
      mkdirSync(path.dirname(path.join(dir, 'backups', key)), { recursive: true });
      writeFileSync(path.join(dir, 'backups', key), 'x');
      writeFileSync(path.join(dir, 'backups', manifestKeyFor(key)), '{}');
    }
  }
}

describe('bkp diff', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  cpSync(FIX, t.dir, { recursive: true });
  mkdirSync(path.join(t.dir, 'data'));
  mkdirSync(path.join(t.dir, 'more'));
  catalog(t.dir);
  const oldF = path.join(t.dir, 'old.yaml');
  const newF = path.join(t.dir, 'new.yaml');
  const norm = (s: string) => s.split(t.dir).join('<dir>');

  it('text: changed fields, the backups the new retention prunes, most destructive first', async () => {
    const r = await bkp(['diff', oldF, newF, '--now', NOW, '--detailed-exitcode']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(2); // existing backups would be pruned
    golden('text.expected', norm(r.stdout));
    // app's retention shrinks: of 40 nightly backups (23:00 UTC, Oct 13 – Nov 21), keep_daily 30 +
    // weekly 8 keep 32 (the weekly rule runs out and keeps the oldest). keep_daily 7 + weekly 4 in
    // Europe/Paris, where 23:00 UTC is already the next day, keep Nov 15–21 and the backups of
    // Nov 14, 7 and Oct 31 (Paris Sundays): 10 remain, 22 of the 32 are lost.
    expect(r.stdout.split('\n')[0]).toBe('~ target app');
    expect(r.stdout).toContain('! 22 of 40 backups of app/files in local would be pruned (10 remain)');
    expect(r.stdout).toContain('! its 40 existing backup(s) are left alone');
  });

  it('markdown and json', async () => {
    golden('markdown.expected', norm((await bkp(['diff', oldF, newF, '--now', NOW, '--format', 'markdown'])).stdout));
    const j = await bkp(['diff', oldF, newF, '--now', NOW, '--format', 'json']);
    golden('json.expected', norm(j.stdout));
    const d = JSON.parse(j.stdout);
    expect(d.summary).toEqual({ added: 1, removed: 1, changed: 2, lost: 22 });
  });

  it('no change, no prune: exit 0 with --detailed-exitcode', async () => {
    const r = await bkp(['diff', newF, newF, '--now', NOW, '--detailed-exitcode']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('No changes.');
  });

  it('--base-ref reads the old policy from git; secrets the job does not have do not stop it', async () => {
    const repo = path.join(t.dir, 'repo');
    mkdirSync(repo);
    const git = (...a: string[]) => execFileSync('git', a, { cwd: repo, stdio: 'pipe', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
    git('init', '-q', '-b', 'main');
    mkdirSync(path.join(repo, 'data'));
    writeFileSync(path.join(repo, 'bkp.yaml'), readFileSync(oldF, 'utf8').replace('paths: [./data]', 'paths: ["${env:APP_DATA_DIR}"]'));
    git('add', '.');
    git('commit', '-qm', 'old');
    writeFileSync(path.join(repo, 'bkp.yaml'), readFileSync(oldF, 'utf8').replace('keep_daily: 30', 'keep_daily: 14'));
    const r = await bkp(['diff', '--base-ref', 'main', '-c', 'bkp.yaml', '--no-impact'], { cwd: repo });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('retention.keep_daily: 30 → 14');
    expect(r.stdout).toContain('paths: ["${env:APP_DATA_DIR}"] → ["./data"]');
    expect(r.stdout.trim().split('\n').pop()).toBe('Diff: 0 target(s) added, 2 changed, 0 removed; impact unknown (not computed (--no-impact)).');
  });
});
