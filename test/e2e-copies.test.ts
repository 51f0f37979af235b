import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bkp, lastLine } from './helpers/cli.js';
import { filesPolicy, filesUnder, workspace } from './helpers/workspace.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const ids = (dir: string) =>
  filesUnder(dir)
    .filter((f) => f.endsWith('.tar.gz'))
    .map((f) => /-([0-9a-f]{12})\./.exec(f)![1])
    .sort();

/** Several storages per target, through the CLI on local folders (sftp and s3 have their own tests). */
describe('copies to several storages', () => {
  it('copies every backup to a storage added later, keeps each storage to its own retention, and restores from either', async () => {
    const w = workspace(() => filesPolicy({ retention: '{ keep_daily: 7 }' }));
    cleanups.push(w.cleanup);
    for (const day of ['2026-11-17', '2026-11-18', '2026-11-19']) {
      expect((await bkp(['apply', '-c', w.config, '--auto-approve', '--now', `${day}T23:05:00Z`])).code).toBe(0);
    }
    // Add an offsite storage that keeps only the 2 newest.
    writeFileSync(
      w.config,
      readFileSync(w.config, 'utf8')
        .replace('  local: { type: local, path: ./backups }', '  local: { type: local, path: ./backups }\n  offsite: { type: local, path: ./offsite, retention: { keep_last: 2 } }')
        .replace('    schedule: nightly', '    storage: [local, offsite]\n    schedule: nightly'),
    );
    const plan = await bkp(['plan', '-c', w.config, '--now', '2026-11-20T23:05:00Z']);
    expect(plan.stdout).toContain('+ copy "app/files/new" {');
    expect(lastLine(plan.stdout)).toBe('Plan: 3 to create, 0 to change, 0 to delete.'); // tonight's backup, its copy, and the newest existing one
    const a = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-20T23:05:00Z']);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(lastLine(a.stdout)).toBe('Apply complete! Resources: 3 created, 0 changed, 0 deleted.');
    const local = ids(path.join(w.dir, 'backups'));
    const offsite = ids(path.join(w.dir, 'offsite'));
    expect(local).toHaveLength(4);
    expect(offsite).toHaveLength(2);
    expect(offsite.every((id) => local.includes(id))).toBe(true);
    expect((await bkp(['plan', '-c', w.config, '--now', '2026-11-20T23:05:00Z', '--detailed-exitcode'])).code).toBe(0);

    // The next night: one backup, one copy, and offsite prunes its oldest (after the copy).
    const next = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    expect(lastLine(next.stdout)).toBe('Apply complete! Resources: 2 created, 0 changed, 1 deleted.');
    expect(ids(path.join(w.dir, 'offsite'))).toHaveLength(2);

    const v = await bkp(['verify', '-c', w.config, '--deep']);
    expect(lastLine(v.stdout)).toBe('7 backups verified (deep).');
    const list = await bkp(['list', '-c', w.config, '--storage', 'offsite']);
    expect(list.stdout).toContain('app/files in offsite (2 backups)');

    // Restore from the copy: the local storage loses its artifacts.
    const out = path.join(w.dir, 'from-offsite');
    const r = await bkp(['restore', 'app', '-c', w.config, '--storage', 'offsite', '--to', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('from storage offsite');
    expect(readFileSync(path.join(out, w.dir.slice(1), 'data', 'a.txt'), 'utf8')).toBe('alpha\n');
  }, 120_000);
});
