import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../src/storage/local/local-storage.js';
import { AlreadyExistsError, PARTIAL_MARKER } from '../src/storage/types.js';
import { generated, sha256Of } from './helpers/streams.js';

let tmp: string;
/** tmpfs mounts made by tests, unmounted in afterAll too: a timed-out test never runs its finally. */
const mounts = new Set<string>();
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'bkp-local-'));
});
afterAll(async () => {
  for (const dir of mounts) unmount(dir);
  await rm(tmp, { recursive: true, force: true });
});

async function fresh(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Every file under `dir`, relative, for "nothing left behind" checks. */
async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

function tryMount(dir: string, options: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
    mounts.add(dir);
    return true;
  } catch {
    return false;
  }
}

function unmount(dir: string): void {
  if (!mounts.delete(dir)) return;
  execFileSync('umount', [dir], { stdio: 'pipe' });
}

describe('LocalStorage', () => {
  it('describes itself with its absolute path', () => {
    expect(new LocalStorage('local', 'relative/dir').describe()).toBe(`local:${path.resolve('relative/dir')}`);
  });

  it('streams 200 MB in and out with bounded memory', async () => {
    const root = await fresh('big');
    const storage = new LocalStorage('local', root);
    const total = 200 * 1024 * 1024;
    const { stream, digest } = generated(total);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let progressCalls = 0;
    let lastProgress = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const { size } = await storage.put('app/files/big.bin', stream, (bytes) => {
        progressCalls++;
        lastProgress = bytes;
        peak = Math.max(peak, process.memoryUsage().rss);
      });
      expect(size).toBe(total);
      expect(lastProgress).toBe(total);
      expect(progressCalls).toBeGreaterThan(1);
      const back = await sha256Of(await storage.get('app/files/big.bin'));
      expect(back.size).toBe(total);
      expect(back.hex).toBe(digest());
    } finally {
      clearInterval(sampler);
    }
    expect(peak - baseline).toBeLessThan(150 * 1024 * 1024);
    expect(await allFiles(root)).toEqual(['app/files/big.bin']);
  });

  it('leaves neither the key nor a temp file when the source fails half way', async () => {
    const root = await fresh('atomic');
    const storage = new LocalStorage('local', root);
    async function* failing(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 50; i++) yield Buffer.alloc(64 * 1024, i);
      throw new Error('pg_dump: connection lost');
    }
    // The source's own error comes through unchanged: the engine, not the storage, failed.
    await expect(storage.put('app/db/x.dump', Readable.from(failing()))).rejects.toThrow('pg_dump: connection lost');
    expect(await storage.list('')).toEqual([]);
    expect(await allFiles(root)).toEqual([]);
    await expect(storage.get('app/db/x.dump')).rejects.toThrow(`storage "local" (${root}): no object app/db/x.dump`);
  });

  it('round-trips text and lists by prefix, recursively, with sizes and times', async () => {
    const root = await fresh('list');
    const storage = new LocalStorage('local', root);
    await storage.putText('app/files/a.tar.gz', 'aaa');
    await storage.putText('app/files/a.tar.gz.manifest.json', '{"x":1}');
    await storage.putText('app2/files/b.tar.gz', 'bb');
    await storage.putText('locks/app.json', '{}');
    expect(await storage.getText('app/files/a.tar.gz.manifest.json')).toBe('{"x":1}');

    const byPrefix = async (p: string): Promise<string[]> => (await storage.list(p)).map((o) => o.key).sort();
    expect(await byPrefix('app/')).toEqual(['app/files/a.tar.gz', 'app/files/a.tar.gz.manifest.json']);
    expect(await byPrefix('app')).toEqual(['app/files/a.tar.gz', 'app/files/a.tar.gz.manifest.json', 'app2/files/b.tar.gz']);
    expect(await byPrefix('app/files/a.tar.gz.m')).toEqual(['app/files/a.tar.gz.manifest.json']);
    expect(await byPrefix('')).toHaveLength(4);
    expect(await byPrefix('nothing/here/')).toEqual([]);
    // Plain listings do not stat (planning lists many keys); detailed ones give size and time.
    expect(await storage.list('app2/')).toEqual([{ key: 'app2/files/b.tar.gz' }]);
    const detailed = await storage.list('app2/', { detailed: true });
    expect(detailed).toEqual([{ key: 'app2/files/b.tar.gz', size: 2, modifiedAt: expect.any(Date) }]);
    expect(Math.abs((detailed[0]?.modifiedAt?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);

    // A missing root is an empty storage, not an error.
    expect(await new LocalStorage('x', path.join(root, 'missing')).list('')).toEqual([]);
  });

  it('shows a temp file left by a killed upload as a partial key', async () => {
    const root = await fresh('partial');
    await mkdir(path.join(root, 'app/files'), { recursive: true });
    await writeFile(path.join(root, `app/files/a.tar.gz${PARTIAL_MARKER}0123`), 'half');
    const keys = (await new LocalStorage('local', root).list('app/')).map((o) => o.key);
    expect(keys).toEqual([`app/files/a.tar.gz${PARTIAL_MARKER}0123`]);
  });

  it('deletes, tolerates missing keys, and removes emptied folders', async () => {
    const root = await fresh('delete');
    const storage = new LocalStorage('local', root);
    await storage.putText('app/files/a', '1');
    await storage.putText('app/other/b', '2');
    await storage.delete('app/files/a');
    await storage.delete('app/files/a');
    expect(existsSync(path.join(root, 'app/files'))).toBe(false);
    expect(existsSync(path.join(root, 'app/other/b'))).toBe(true);
    expect(existsSync(root)).toBe(true);
  });

  it('putExclusive refuses an existing key', async () => {
    const root = await fresh('exclusive');
    const storage = new LocalStorage('local', root);
    await storage.putExclusive('locks/app.json', '{"holder":"a"}');
    const second = storage.putExclusive('locks/app.json', '{"holder":"b"}');
    await expect(second).rejects.toBeInstanceOf(AlreadyExistsError);
    await expect(second).rejects.toThrow('locks/app.json already exists');
    expect(await storage.getText('locks/app.json')).toBe('{"holder":"a"}');
    expect(await allFiles(root)).toEqual(['locks/app.json']);
    // Racing: exactly one of many concurrent creators wins.
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => storage.putExclusive('locks/race.json', `${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('rejects keys that could leave the root', async () => {
    const storage = new LocalStorage('local', await fresh('keys'));
    for (const key of ['/etc/passwd', '../x', 'a/../../x', 'a//b', './a', '']) {
      await expect(storage.putText(key, 'x'), key).rejects.toThrow('invalid key');
      await expect(storage.get(key), key).rejects.toThrow('invalid key');
    }
    await expect(storage.list('../')).rejects.toThrow('invalid prefix');
  });

  it('creates a missing root on checkWritable and leaves no probe behind', async () => {
    const root = path.join(await fresh('create'), 'a/b');
    await new LocalStorage('local', root).checkWritable();
    expect(existsSync(root)).toBe(true);
    expect(await readdir(root)).toEqual([]);
  });

  it('says when the root is a file', async () => {
    const root = path.join(await fresh('file-root'), 'y');
    await writeFile(root, 'not a folder');
    const storage = new LocalStorage('local', root);
    const expected = `storage "local" (${root}): ${root} is a file, not a folder`;
    await expect(storage.checkWritable()).rejects.toThrow(expected);
    await expect(storage.putText('a/b', 'x')).rejects.toThrow(expected);
    await expect(storage.list('')).rejects.toThrow(expected);
    // A file higher up is named too.
    await expect(new LocalStorage('local', path.join(root, 'sub')).checkWritable()).rejects.toThrow(
      `storage "local" (${path.join(root, 'sub')}): ${root} is a file, not a folder`,
    );
  });

  it('says when the folder is not writable', async () => {
    const dir = await fresh('readonly');
    // chmod 555 stops everyone but root; as root (CI containers, this machine) use a read-only
    // mount, or failing that a kernel folder nobody may create files in.
    await chmod(dir, 0o555);
    let chmodWorks = true;
    try {
      await writeFile(path.join(dir, 'probe'), 'x');
      chmodWorks = false;
      await rm(path.join(dir, 'probe'));
    } catch {
      // EACCES: not root, chmod is enough
    }
    await chmod(dir, 0o755);
    if (chmodWorks) {
      await chmod(dir, 0o555);
      try {
        await expect(new LocalStorage('local', dir).checkWritable()).rejects.toThrow(
          `storage "local" (${dir}): cannot write to the folder: permission denied`,
        );
        await expect(new LocalStorage('local', dir).putText('a', 'x')).rejects.toThrow(`storage "local" (${dir}): permission denied while writing a`);
      } finally {
        await chmod(dir, 0o755);
      }
      return;
    }
    const mounted = tryMount(dir, 'ro,size=1m');
    if (mounted) {
      try {
        await expect(new LocalStorage('local', dir).checkWritable()).rejects.toThrow(
          `storage "local" (${dir}): cannot write to the folder: read-only file system`,
        );
        await expect(new LocalStorage('local', dir).putText('app/x', 'x')).rejects.toThrow(
          `storage "local" (${dir}): read-only file system while writing app/x`,
        );
      } finally {
        unmount(dir);
      }
    }
    // sysfs refuses new files even to root: the same check without mount privileges.
    const sysfs = '/sys/fs';
    if (existsSync(sysfs)) {
      await expect(new LocalStorage('sys', sysfs).checkWritable()).rejects.toThrow(/^storage "sys" \(\/sys\/fs\): cannot write to the folder: (permission denied|read-only file system|operation not permitted)$/);
    } else if (!mounted) {
      throw new Error('running as root without mount privileges and without /sys: no way to make a folder read-only here');
    }
  });

  const canMount = (() => {
    if (process.platform !== 'linux') return false;
    const probe = path.join(os.tmpdir(), `bkp-mount-probe-${process.pid}`);
    try {
      execFileSync('mkdir', ['-p', probe]);
      if (!tryMount(probe, 'size=64k')) return false;
      unmount(probe);
      return true;
    } catch {
      return false;
    } finally {
      execFileSync('rm', ['-rf', probe]);
    }
  })();
  it('maps a full disk to a clean error, removes the temp file and keeps earlier objects (1 MB tmpfs)', async () => {
    // Never skipped: without the mount there is no honest full disk, so the test fails and says why.
    if (!canMount) throw new Error('the disk-full test mounts a 1 MB tmpfs and needs root (CAP_SYS_ADMIN): run the tests as root, as CI does');
    const dir = await fresh('full');
    expect(tryMount(dir, 'size=1m')).toBe(true);
    try {
      const storage = new LocalStorage('small', dir);
      await storage.checkWritable();
      await storage.putText('app/files/earlier.manifest.json', '{"ok":true}');
      const { stream } = generated(5 * 1024 * 1024);
      await expect(storage.put('app/files/big.tar.gz', stream)).rejects.toThrow(
        `storage "small" (${dir}): no space left on device while writing app/files/big.tar.gz`,
      );
      expect(await allFiles(dir)).toEqual(['app/files/earlier.manifest.json']);
      expect(await storage.getText('app/files/earlier.manifest.json')).toBe('{"ok":true}');
      // Space came back with the temp file: small writes work again.
      await storage.putText('app/files/after', 'fine');
    } finally {
      unmount(dir);
    }
  });
});
