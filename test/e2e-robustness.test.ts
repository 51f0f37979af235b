import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { bkp, lastLine, startBkp, tempDir } from './helpers/cli.js';
import { filesPolicy, filesUnder, workspace } from './helpers/workspace.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).reverse().forEach((c) => c()));
function ws(...args: Parameters<typeof workspace>) {
  const w = workspace(...args);
  cleanups.push(w.cleanup);
  return w;
}

/** Incompressible data, so gzip keeps a backup busy for a few seconds. */
async function bigFile(file: string, mib: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < mib; i++) if (!out.write(randomBytes(1024 * 1024))) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Listed {
  backups: { id: string; started_at: string }[];
  incomplete: { key: string }[];
}

describe('a kill -9 in the middle of a backup', () => {
  it('leaves earlier backups intact and verifiable, never lists the partial one, and the next plan cleans it up', async () => {
    const w = ws(() => filesPolicy());
    const first = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-20T23:05:00Z']);
    expect(first.code, first.stderr).toBe(0);
    await bigFile(path.join(w.dir, 'data', 'big.bin'), 300);

    const child = startBkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    const unitDir = path.join(w.dir, 'backups', 'app', 'files');
    const partial = await waitFor('a partial artifact of a few MB', () => readdirSync(unitDir).find((f) => f.includes('.partial-') && statSync(path.join(unitDir, f)).size > 4 * 1024 * 1024));
    child.kill('SIGKILL');
    await once(child, 'close');

    const list = JSON.parse((await bkp(['list', '-c', w.config, '--json'])).stdout) as Listed;
    expect(list.backups.map((b) => b.started_at)).toEqual(['2026-11-20T23:05:00.000Z']);
    expect(list.incomplete.map((i) => i.key)).toEqual([`app/files/${partial}`]);

    const verify = await bkp(['verify', '-c', w.config, '--deep']);
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toContain('INCOMPLETE local: app/files/');
    expect(lastLine(verify.stdout)).toBe('1 backups verified (deep).');

    // The killed apply's lock is stale (its pid is gone on this host): the plan is not blocked.
    const plan = await bkp(['plan', '-c', w.config, '--now', '2026-11-21T23:05:00Z']);
    expect(plan.stdout).toContain(`- incomplete "app/files/${partial}" {`);
    expect(lastLine(plan.stdout)).toBe('Plan: 1 to create, 0 to change, 1 to delete.');

    const again = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(again.stdout).toContain('Warning: taking over a stale lock of target app in storage local');
    expect(readdirSync(unitDir).filter((f) => f.includes('.partial-'))).toEqual([]);
    expect((await bkp(['verify', '-c', w.config])).stdout).toContain('2 backups verified.');
  }, 120_000);
});

describe('two applies at once', () => {
  it('the second fails fast naming the holder of the lock', async () => {
    const w = ws(() => filesPolicy());
    await bigFile(path.join(w.dir, 'data', 'big.bin'), 200);
    const child = startBkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    const closed = once(child, 'close');
    const lockFile = path.join(w.dir, 'backups', 'locks', 'app.json');
    const lock = await waitFor('the first apply to take its lock', () => (existsSync(lockFile) ? (JSON.parse(readFileSync(lockFile, 'utf8')) as { holder: string; pid: number }) : undefined));
    expect(lock.pid).toBe(child.pid);

    const t0 = Date.now();
    const second = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`target app is locked in storage local by ${lock.holder} (host `);
    expect(second.stderr).toContain(`pid ${child.pid})`);
    expect(second.stderr).toContain('bkp unlock app');
    expect(Date.now() - t0).toBeLessThan(10_000); // fails fast rather than waiting for the first

    const [code] = (await closed) as [number];
    expect(code).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
  }, 120_000);

  it('bkp unlock removes a lock left by a holder on another host', async () => {
    const w = ws(() => filesPolicy());
    mkdirSync(path.join(w.dir, 'backups', 'locks'), { recursive: true });
    const far = { holder: 'bkp apply run 0123456789ab', host: 'other-host', pid: 1, created_at: new Date().toISOString(), expires_at: new Date(Date.now() + 3_600_000).toISOString(), units: ['app'] };
    writeFileSync(path.join(w.dir, 'backups', 'locks', 'app.json'), JSON.stringify(far));
    const blocked = await bkp(['apply', '-c', w.config, '--auto-approve']);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain('by bkp apply run 0123456789ab (host other-host, pid 1)');
    const plan = await bkp(['plan', '-c', w.config]);
    expect(plan.stdout).toContain('Note: app: locked by bkp apply run 0123456789ab');
    const u = await bkp(['unlock', 'app', '-c', w.config]);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toContain('removed lock app in storage local (held by bkp apply run 0123456789ab, host other-host, pid 1');
    expect((await bkp(['apply', '-c', w.config, '--auto-approve'])).code).toBe(0);
  });
});

describe('storage that cannot be written', () => {
  it('a storage path that is a file: a clear error and nothing written', async () => {
    const w = ws(() => filesPolicy());
    writeFileSync(path.join(w.dir, 'backups'), 'not a folder');
    const a = await bkp(['apply', '-c', w.config, '--auto-approve']);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain(`storage "local" (${path.join(w.dir, 'backups')}): ${path.join(w.dir, 'backups')} is a file, not a folder`);
  });

  it('a full disk: the backup fails clearly, no partial file stays, earlier backups are intact', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const mnt = path.join(t.dir, 'small-disk');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`this test needs to mount a 2 MB tmpfs to simulate a full disk (run the tests as root): ${(err as Error).message}`);
    }
    cleanups.push(() => execFileSync('umount', [mnt]));
    const w = ws(() => filesPolicy().replace('path: ./backups', `path: ${mnt}`));
    const first = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-20T23:05:00Z']);
    expect(first.code, first.stderr).toBe(0);
    await bigFile(path.join(w.dir, 'data', 'big.bin'), 8);
    const full = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    expect(full.code).toBe(1);
    expect(full.stdout).toMatch(/app\/files: backup: FAILED after [\d.]+s: storage "local" \(.*\): no space left on device while writing app\/files\//);
    expect(lastLine(full.stdout)).toMatch(/^Apply finished with errors! .* 1 failed\.$/);
    expect(filesUnder(mnt).filter((f) => f.includes('.partial-'))).toEqual([]);
    const verify = await bkp(['verify', '-c', w.config]);
    expect(lastLine(verify.stdout)).toBe('1 backups verified.');
    const runs = await bkp(['list', '--runs', '-c', w.config]);
    expect(runs.stdout).toMatch(/failed\s+apply/);
    expect(runs.stdout).toContain('no space left on device');
  }, 60_000);
});

describe('secrets', () => {
  it('a secret from the environment appears in no output and no plan file', async () => {
    const SECRET = 'hunter2-very-secret-token';
    const w = ws(() =>
      filesPolicy({
        hooks: '    hooks:\n      before: ["echo token=${env:APP_TOKEN}", "echo postgres://bkp:${env:APP_TOKEN}@db/x >&2"]\n',
      }),
    );
    const env = { APP_TOKEN: SECRET };
    const planFile = path.join(w.dir, 'p.plan');
    const outputs = [
      await bkp(['validate', '-c', w.config, '--format', 'json'], { env }),
      await bkp(['plan', '-c', w.config, '--out', planFile, '--json'], { env }),
      await bkp(['apply', '-c', w.config, '--auto-approve'], { env }),
      await bkp(['apply', '-c', w.config, '--auto-approve', '--json', '--now', '2030-01-01T00:00:00Z'], { env }),
      await bkp(['list', '-c', w.config, '--json', '--runs'], { env }),
    ];
    const all = outputs.map((o) => o.stdout + o.stderr).join('\n') + readFileSync(planFile, 'utf8');
    expect(outputs.map((o) => o.code)).toEqual([0, 0, 0, 0, 0]);
    expect(all).toContain('token=***');
    expect(all).toContain('postgres://bkp:***@db/x');
    expect(all).not.toContain(SECRET);
    for (const f of filesUnder(path.join(w.dir, 'backups')).filter((x) => x.endsWith('.json'))) {
      expect(readFileSync(path.join(w.dir, 'backups', f), 'utf8')).not.toContain(SECRET);
    }
  });

  it('a missing variable is a validation error that names it', async () => {
    const w = ws(() => filesPolicy({ hooks: '    hooks:\n      before: ["echo ${env:NOT_SET_ANYWHERE}"]\n' }));
    const v = await bkp(['validate', '-c', w.config]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/bkp\.yaml:\d+:\d+: .*NOT_SET_ANYWHERE/);
  });
});

describe('a corrupted artifact', () => {
  it('fails verify (exit 1) and is refused by restore', async () => {
    const w = ws(() => filesPolicy());
    expect((await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z'])).code).toBe(0);
    const rel = filesUnder(path.join(w.dir, 'backups')).find((f) => f.endsWith('.tar.gz'))!;
    const file = path.join(w.dir, 'backups', rel);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(file, bytes);

    const v = await bkp(['verify', '-c', w.config]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/FAILED {2}local: app\/files [0-9a-f]{12} \(2026-11-21T23:05:00.000Z\): sha256 [0-9a-f]{16}… does not match the manifest's [0-9a-f]{16}…/);
    expect(lastLine(v.stdout)).toBe('1 of 1 backups failed verification.');

    const out = path.join(w.dir, 'out');
    const r = await bkp(['restore', 'app', '-c', w.config, '--to', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backup [0-9a-f]{12} fails its checksum, nothing was restored: sha256/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('a failed backup never comes with a prune', () => {
  it('skips the prunes of a unit whose backup failed in the same apply', async () => {
    const w = ws(() => filesPolicy({ retention: '{ keep_last: 2 }', hooks: '    hooks:\n      before: ["test ! -e ./fail-next"]\n' }));
    for (const day of ['2026-11-19', '2026-11-20']) {
      expect((await bkp(['apply', '-c', w.config, '--auto-approve', '--now', `${day}T23:05:00Z`])).code).toBe(0);
    }
    writeFileSync(path.join(w.dir, 'fail-next'), '');
    const plan = await bkp(['plan', '-c', w.config, '--now', '2026-11-21T23:05:00Z']);
    expect(lastLine(plan.stdout)).toBe('Plan: 1 to create, 0 to change, 1 to delete.');
    const a = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    expect(a.code).toBe(1);
    expect(a.stdout).toContain('app/files: backup: FAILED');
    expect(a.stdout).toMatch(/app\/files: prune [0-9a-f]{12}: skipped: not pruned: the backup of app\/files failed in this apply \(safety rule\)/);
    expect(lastLine(a.stdout)).toBe('Apply finished with errors! Resources: 0 created, 0 changed, 0 deleted, 1 skipped, 1 failed.');
    const list = JSON.parse((await bkp(['list', '-c', w.config, '--json'])).stdout) as Listed;
    expect(list.backups.map((b) => b.started_at.slice(0, 10))).toEqual(['2026-11-19', '2026-11-20']);
  });
});
