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

describe('copies between storages that encode differently', () => {
  it('a plain local backup is copied encrypted and recompressed, and restores from the copy', async () => {
    const KEY = 'copy-key-5a8f2c';
    const w = workspace(() =>
      filesPolicy({ retention: '{ keep_daily: 7 }' })
        .replace('  local: { type: local, path: ./backups }', '  local: { type: local, path: ./backups }\n  vault: { type: local, path: ./vault, compression: zstd, encryption: { key: "${env:VAULT_KEY}" } }')
        .replace('    schedule: nightly', '    storage: [local, vault]\n    schedule: nightly'),
    );
    cleanups.push(w.cleanup);
    const env = { VAULT_KEY: KEY };
    const a = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z'], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const vault = filesUnder(path.join(w.dir, 'vault'));
    expect(vault.filter((f) => !f.startsWith('runs/'))).toEqual([expect.stringMatching(/^app\/files\/20261121T230500Z-[0-9a-f]{12}\.manifest\.json$/), expect.stringMatching(/\.tar\.gz\.zst\.enc$/)]);
    const m = JSON.parse(readFileSync(path.join(w.dir, 'vault', vault.find((f) => f.endsWith('.manifest.json'))!), 'utf8'));
    expect(m).toMatchObject({ compression: 'zstd', encryption: 'aes-256-gcm-chunked/1', copied_from: 'local' });
    const v = await bkp(['verify', '-c', w.config, '--deep'], { env });
    expect(lastLine(v.stdout)).toBe('2 backups verified (deep).');
    const out = path.join(w.dir, 'out');
    const r = await bkp(['restore', 'app', '-c', w.config, '--storage', 'vault', '--to', out], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(path.join(out, w.dir.slice(1), 'data', 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(a.stdout + a.stderr + v.stdout + r.stdout + r.stderr).not.toContain(KEY);
  }, 60_000);
});
