import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { list, type ReadEntry } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/diagnostics.js';
import type { Manifest } from '../src/planner/types.js';
import type { Target } from '../src/policy/types.js';
import { excludeFilter } from '../src/providers/files/exclude.js';
import { filesProvider } from '../src/providers/files/index.js';
import type { ProviderContext } from '../src/providers/types.js';

let tmp: string;
/** tmp as tar stores it: absolute, without the leading slash. */
let member: string;
const logs: string[] = [];
const ctx: ProviderContext = { log: (line) => logs.push(line) };

function target(settings: Record<string, unknown>, baseDir = tmp): Target {
  return {
    name: 'brainwave',
    engine: 'files',
    storage: ['local'],
    schedule: { cron: '0 23 * * *', timezone: 'UTC', retention: { keep_daily: 7 } },
    hooks: { before: ['brainwave stop'], after: ['brainwave start'], timeoutMs: 600_000 },
    settings,
    displaySettings: settings,
    baseDir,
  };
}

function manifest(facts: Record<string, unknown>): Manifest {
  return {
    format: 'bkp-manifest/1',
    id: 'abc123',
    target: 'brainwave',
    unit: 'files',
    engine: 'files',
    kind: 'scheduled',
    started_at: '2026-11-20T23:00:00Z',
    finished_at: '2026-11-20T23:00:05Z',
    size: 0,
    sha256: '',
    compression: 'gzip',
    encryption: 'none',
    artifact: 'x.tar.gz',
    facts,
  };
}

/** Entry names of a tar.gz, as node-tar reads them. */
async function entriesOf(file: string): Promise<string[]> {
  const names: string[] = [];
  await list({ file, onReadEntry: (e: ReadEntry) => void names.push(e.path) });
  return names.sort();
}

/** The Brainwave layout: docker volumes bound into /srv (here under tmp). */
async function makeVolumes(): Promise<void> {
  const bw = path.join(tmp, 'srv/bw');
  await mkdir(path.join(bw, 'config/certs'), { recursive: true });
  await writeFile(path.join(bw, 'config/app.yaml'), 'server: https\n');
  await writeFile(path.join(bw, 'config/.env'), 'SECRET=1\n');
  await writeFile(path.join(bw, 'config/certs/tls.key'), randomBytes(2048));
  await chmod(path.join(bw, 'config/certs/tls.key'), 0o600);
  // Owners matter in docker volumes (a database folder owned by its container's uid).
  if (process.getuid?.() === 0) await chown(path.join(bw, 'config/certs/tls.key'), 999, 998);
  await writeFile(path.join(bw, 'config/run.sh'), '#!/bin/sh\n');
  await chmod(path.join(bw, 'config/run.sh'), 0o775); // group-writable: the umask must not eat it
  const data = path.join(bw, 'volumes/igrc-data');
  await mkdir(path.join(data, 'cache'), { recursive: true });
  await mkdir(path.join(data, 'logs'), { recursive: true });
  await mkdir(path.join(data, 'project/empty'), { recursive: true });
  await writeFile(path.join(data, 'project/igrc.db'), randomBytes(300_000));
  await writeFile(path.join(data, 'cache/blob.tmp'), 'cache');
  await writeFile(path.join(data, 'logs/server.log'), 'log');
  await writeFile(path.join(data, 'logs/keep.txt'), 'kept');
  await utimes(path.join(data, 'project/igrc.db'), new Date('2024-01-02T03:04:05Z'), new Date('2024-01-02T03:04:05Z'));
  await mkdir(path.join(bw, 'volumes/other'), { recursive: true });
  await writeFile(path.join(bw, 'volumes/other/not-selected'), 'x');
}

const settings = { paths: ['srv/bw/config', 'srv/bw/vol*/igrc-*'], exclude: ['*.log', 'cache/'] };

async function backupTo(file: string, t: Target): Promise<Record<string, unknown>> {
  const b = await filesProvider.backup(t, 'files', ctx);
  expect(b.ext).toBe('tar.gz');
  expect(b.compression).toBe('gzip');
  await pipeline(b.stream, createWriteStream(file));
  return b.done;
}

/** Relative path → content, mode and mtime of every file and folder under `dir`. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of (await readdir(dir, { recursive: true })).sort()) {
    const abs = path.join(dir, rel);
    const s = await lstat(abs);
    const mode = (s.mode & 0o7777).toString(8);
    // tar keeps mtimes to the second, as GNU tar does by default.
    out[rel] = s.isDirectory() ? `dir ${mode}` : `${mode} ${Math.floor(s.mtimeMs / 1000)} ${(await readFile(abs)).toString('base64')}`;
  }
  return out;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'bkp-files-'));
  member = tmp.slice(1);
  await makeVolumes();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('files provider', () => {
  it('has one unit and reports a path that matches nothing', async () => {
    expect(await filesProvider.discoverUnits(target(settings), ctx)).toEqual(['files']);
    const bad = target({ paths: ['srv/bw/config', 'srv/bw/volume*/nope-*'] });
    await expect(filesProvider.discoverUnits(bad, ctx)).rejects.toThrow(
      `target "brainwave": path "srv/bw/volume*/nope-*" matches nothing (relative to ${tmp})`,
    );
    await expect(filesProvider.backup(target({ paths: ['srv/missing'] }), 'files', ctx)).rejects.toBeInstanceOf(UserError);
    await expect(filesProvider.backup(target({ paths: [] }), 'files', ctx)).rejects.toThrow('"paths" must be a non-empty list');
  });

  it('archives the roots (one via a glob) without the excluded files, as GNU tar would store them', async () => {
    const file = path.join(tmp, 'a.tar.gz');
    const facts = await backupTo(file, target(settings));
    const config = `${member}/srv/bw/config`;
    const data = `${member}/srv/bw/volumes/igrc-data`;
    const expected = [
      `${config}/`,
      `${config}/.env`,
      `${config}/app.yaml`,
      `${config}/certs/`,
      `${config}/certs/tls.key`,
      `${config}/run.sh`,
      `${data}/`,
      `${data}/logs/`,
      `${data}/logs/keep.txt`,
      `${data}/project/`,
      `${data}/project/empty/`,
      `${data}/project/igrc.db`,
    ];
    expect(await entriesOf(file)).toEqual(expected);
    // The real tar reads it the same way.
    const gnu = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(gnu).toEqual(expected);
    expect(facts).toEqual({
      paths: [path.join(tmp, 'srv/bw/config'), path.join(tmp, 'srv/bw/volumes/igrc-data')],
      file_count: 6,
      bytes_read: 14 + 9 + 2048 + 10 + 4 + 300_000,
    });
  });

  it('restores into a new folder byte for byte, with modes and mtimes', async () => {
    const file = path.join(tmp, 'b.tar.gz');
    const facts = await backupTo(file, target(settings));
    const dest = path.join(tmp, 'restore-new');
    const t = target(settings);
    expect(await filesProvider.restoreTarget(t, 'files', { to: dest, force: false })).toEqual({ destination: dest, hasData: false });
    const result = await filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { to: dest, force: false }, ctx);
    expect(result).toEqual({ destination: dest, details: ['6 files restored'] });

    const original = await snapshot(path.join(tmp, 'srv/bw/config'));
    expect(await snapshot(path.join(dest, member, 'srv/bw/config'))).toEqual(original);
    expect(original['run.sh']).toMatch(/^775 /);
    expect(original['certs/tls.key']).toMatch(/^600 /);
    const restoredData = await snapshot(path.join(dest, member, 'srv/bw/volumes/igrc-data'));
    expect(Object.keys(restoredData)).toEqual(['logs', 'logs/keep.txt', 'project', 'project/empty', 'project/igrc.db']);
    const originalData = await snapshot(path.join(tmp, 'srv/bw/volumes/igrc-data'));
    for (const rel of ['logs/keep.txt', 'project/igrc.db']) expect(restoredData[rel]).toBe(originalData[rel]);
    expect((await stat(path.join(dest, member, 'srv/bw/volumes/igrc-data/project/igrc.db'))).mtime.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    if (process.getuid?.() === 0) {
      const key = await stat(path.join(dest, member, 'srv/bw/config/certs/tls.key'));
      expect([key.uid, key.gid]).toEqual([999, 998]);
    } else {
      console.warn('files-provider.test: not root, owner preservation not checked');
    }
  });

  it('refuses to restore over data without --force, and overwrites with it', async () => {
    const file = path.join(tmp, 'c.tar.gz');
    const facts = await backupTo(file, target(settings));
    const dest = path.join(tmp, 'restore-busy');
    await mkdir(dest);
    await writeFile(path.join(dest, 'precious.txt'), 'do not lose me');
    const t = target(settings);
    expect(await filesProvider.restoreTarget(t, 'files', { to: dest, force: false })).toEqual({ destination: dest, hasData: true });
    const refused = filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { to: dest, force: false }, ctx);
    await expect(refused).rejects.toBeInstanceOf(UserError);
    await expect(refused).rejects.toThrow(`target "brainwave": ${dest} already holds data; restoring would overwrite it (use --force)`);
    expect(await readdir(dest)).toEqual(['precious.txt']);

    const forced = await filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { to: dest, force: true }, ctx);
    expect(forced.details).toEqual(['6 files restored']);
    expect(await readFile(path.join(dest, member, 'srv/bw/config/app.yaml'), 'utf8')).toBe('server: https\n');
  });

  it('restores in place ("overrides everything"), refusing while the live paths hold data', async () => {
    const dir = path.join(tmp, 'inplace');
    await mkdir(path.join(dir, 'vol/sub'), { recursive: true });
    await writeFile(path.join(dir, 'vol/sub/state.json'), '{"v":1}');
    const t = target({ paths: ['inplace/vol'] });
    const file = path.join(tmp, 'd.tar.gz');
    const facts = await backupTo(file, t);
    await writeFile(path.join(dir, 'vol/sub/state.json'), '{"v":2, "broken": true}');

    const live = `the live data of target brainwave (${path.join(dir, 'vol')})`;
    expect(await filesProvider.restoreTarget(t, 'files', { force: false })).toEqual({ destination: live, hasData: true, safety: { unit: 'files' } });
    await expect(filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { force: false }, ctx)).rejects.toThrow(
      'target "brainwave": its live paths already hold data; restoring would overwrite it (use --force)',
    );
    await filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { force: true }, ctx);
    expect(await readFile(path.join(dir, 'vol/sub/state.json'), 'utf8')).toBe('{"v":1}');

    // The volume is gone (the usual reason to restore): no data in the way, no --force needed.
    await rm(path.join(dir, 'vol'), { recursive: true });
    expect(await filesProvider.restoreTarget(t, 'files', { force: false })).toEqual({ destination: live, hasData: false, safety: { unit: 'files' } });
    const result = await filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { force: false }, ctx);
    expect(result).toEqual({ destination: live, details: ['1 files restored'] });
    expect(await readFile(path.join(dir, 'vol/sub/state.json'), 'utf8')).toBe('{"v":1}');
  });

  it('restores in place through a symlinked parent folder without replacing it', async () => {
    // /var/lib/docker is often a symlink to a data disk: it is the host's, not the backup's.
    const real = path.join(tmp, 'disk/docker');
    await mkdir(path.join(real, 'volumes/pg/_data'), { recursive: true });
    await writeFile(path.join(real, 'volumes/pg/_data/PG_VERSION'), '16\n');
    await symlink(real, path.join(tmp, 'docker-link'));
    const t = target({ paths: ['docker-link/volumes/pg'] });
    const file = path.join(tmp, 'link.tar.gz');
    const facts = await backupTo(file, t);
    expect(await entriesOf(file)).toContain(`${member}/docker-link/volumes/pg/_data/PG_VERSION`);
    await rm(path.join(real, 'volumes/pg'), { recursive: true });

    await filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { force: false }, ctx);
    expect((await lstat(path.join(tmp, 'docker-link'))).isSymbolicLink()).toBe(true);
    expect(await readFile(path.join(real, 'volumes/pg/_data/PG_VERSION'), 'utf8')).toBe('16\n');
  });

  it('refuses an in-place restore of a backup that does not record its paths', async () => {
    const file = path.join(tmp, 'nopaths.tar.gz');
    await backupTo(file, target({ paths: ['inplace'] }));
    await expect(
      filesProvider.restore(target({ paths: ['nowhere-*'] }), 'files', createReadStream(file), manifest({}), { force: true }, ctx),
    ).rejects.toThrow('target "brainwave": this backup does not record the paths it was taken from; restore it with --to FOLDER');
  });

  it('verifies a good archive deeply and rejects a truncated or corrupt one', async () => {
    const file = path.join(tmp, 'e.tar.gz');
    const facts = await backupTo(file, target(settings));
    const t = target(settings);
    expect(await filesProvider.verifyDeep(t, createReadStream(file), manifest(facts))).toEqual(['tar.gz: 12 entries, 295.0 KiB uncompressed']);

    const size = (await stat(file)).size;
    await truncate(file, Math.floor(size / 2));
    await expect(filesProvider.verifyDeep(t, createReadStream(file), manifest(facts))).rejects.toThrow(
      /^target "brainwave": the tar\.gz archive is truncated or corrupt \(.+\)$/,
    );
    // A truncated archive does not restore either.
    await expect(
      filesProvider.restore(t, 'files', createReadStream(file), manifest(facts), { to: path.join(tmp, 'restore-truncated'), force: false }, ctx),
    ).rejects.toThrow(/^target "brainwave": cannot restore: the archive is truncated or corrupt/);

    const garbage = path.join(tmp, 'garbage.tar.gz');
    await writeFile(garbage, randomBytes(4096));
    await expect(filesProvider.verifyDeep(t, createReadStream(garbage), manifest(facts))).rejects.toThrow('truncated or corrupt');
  });

  it('fails the backup, naming the file, when a file vanishes while being archived', async () => {
    // a-big is archived first; the stream is not read, so backpressure holds tar inside it and
    // b-tree/d1/d2 is not looked at yet. Deleting it then is a file vanishing mid-backup.
    const dir = path.join(tmp, 'vanish');
    await mkdir(path.join(dir, 'a-big'), { recursive: true });
    await writeFile(path.join(dir, 'a-big/blob'), randomBytes(64 * 1024 * 1024));
    await mkdir(path.join(dir, 'b-tree/d1/d2'), { recursive: true });
    await writeFile(path.join(dir, 'b-tree/d1/d2/file'), 'x');
    const b = await filesProvider.backup(target({ paths: ['vanish/a-big', 'vanish/b-tree'] }), 'files', ctx);
    await new Promise((r) => setTimeout(r, 300));
    await rm(path.join(dir, 'b-tree/d1/d2'), { recursive: true });
    const sink = pipeline(b.stream, createWriteStream(path.join(tmp, 'vanish.tar.gz')));
    await expect(b.done).rejects.toThrow(`target "brainwave": ${path.join(dir, 'b-tree/d1/d2')} vanished while being backed up`);
    await expect(sink).rejects.toThrow('vanished while being backed up');
    await rm(dir, { recursive: true });
  });
});

describe('exclude patterns', () => {
  const roots = ['srv/app', 'srv/one-file.log'];
  const keep = (patterns: string[], member: string, isDir = false): boolean => excludeFilter(roots, patterns)(member, isDir);

  it('match names at any depth when they have no slash', () => {
    expect(keep(['*.log'], 'srv/app/a.log')).toBe(false);
    expect(keep(['*.log'], 'srv/app/deep/er/b.log')).toBe(false);
    expect(keep(['*.log'], 'srv/app/b.log.gz')).toBe(true);
    expect(keep(['*.log'], 'srv/one-file.log')).toBe(false); // a root is matched by its name too, as in tar
    expect(keep(['.cache'], 'srv/app/x/.cache', true)).toBe(false);
    expect(keep(['*'], 'srv/app/.hidden')).toBe(false); // `*` matches dot files, as in tar
  });

  it('anchor at the root when they have a slash', () => {
    expect(keep(['data/tmp'], 'srv/app/data/tmp', true)).toBe(false);
    expect(keep(['data/tmp'], 'srv/app/x/data/tmp', true)).toBe(true);
    expect(keep(['/data'], 'srv/app/data', true)).toBe(false);
    expect(keep(['**/tmp/*.bin'], 'srv/app/a/b/tmp/x.bin')).toBe(false);
    expect(keep(['**/tmp/*.bin'], 'srv/app/tmp/x.bin')).toBe(false);
    expect(keep(['data/**'], 'srv/app/data/x/y')).toBe(false);
    expect(keep(['data/**'], 'srv/app/data', true)).toBe(true);
  });

  it('honour a trailing slash (folders only), classes, braces and escapes', () => {
    expect(keep(['cache/'], 'srv/app/cache', true)).toBe(false);
    expect(keep(['cache/'], 'srv/app/cache', false)).toBe(true);
    expect(keep(['*.{tmp,swp}'], 'srv/app/a.swp')).toBe(false);
    expect(keep(['*.{tmp,swp}'], 'srv/app/a.txt')).toBe(true);
    expect(keep(['core.[0-9]*'], 'srv/app/core.123')).toBe(false);
    expect(keep(['core.[!0-9]*'], 'srv/app/core.123')).toBe(true);
    expect(keep(['file\\*'], 'srv/app/file*')).toBe(false);
    expect(keep(['file\\*'], 'srv/app/file1')).toBe(true);
    expect(keep(['a+b(c)'], 'srv/app/a+b(c)')).toBe(false);
  });

  it('leave paths outside the roots alone', () => {
    expect(keep(['*'], 'other/thing')).toBe(true);
    expect(excludeFilter(roots, [])('srv/app/a.log', false)).toBe(true);
  });
});
