import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/diagnostics.js';
import { checkKnownHosts, hostMatches, parseKnownHosts, sha256Fingerprint } from '../src/storage/sftp/host-key.js';
import { type SftpOptions, SftpStorage, parseSftpOptions, sftpOptionWarnings } from '../src/storage/sftp/sftp-storage.js';
import { AlreadyExistsError, PARTIAL_MARKER } from '../src/storage/types.js';
import { freePort } from './helpers/postgres-server.js';
import { type SshdServer, startSshd } from './helpers/sshd-server.js';
import { generated, rejection, sha256Of } from './helpers/streams.js';

/**
 * SftpStorage against a real OpenSSH sshd (test/helpers/sshd-server.ts): its own host key,
 * authorized key and config in a temp folder, on a free loopback port. The storage root is a
 * folder of this machine, so the tests also look at the files the server really holds.
 */

let server: SshdServer;
let tmp: string;
const storages: SftpStorage[] = [];
const servers: SshdServer[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'bkp-sftp-test-'));
  server = await startSshd();
  servers.push(server);
});

afterAll(async () => {
  for (const s of storages) await s.close();
  for (const s of servers.reverse()) await s.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** A storage on `srv` checked by fingerprint; `overrides` replace any option. */
function storageFor(srv: SshdServer, sub: string, overrides: Partial<SftpOptions> = {}, name = 'offsite'): SftpStorage {
  const s = new SftpStorage(
    name,
    {
      host: srv.host,
      port: srv.port,
      user: srv.user,
      path: path.join(srv.root, sub),
      private_key_file: srv.privateKeyFile,
      host_key: srv.hostKeyFingerprint,
      ...overrides,
    },
    { connectTimeoutMs: 10_000 },
  );
  storages.push(s);
  return s;
}

/** Every file under `dir` on the server's disk, relative. */
async function allFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'other', '-f', file], { stdio: 'pipe' });
}

describe('SftpStorage: objects', () => {
  it('describes itself without secrets', () => {
    const s = new SftpStorage('offsite', { host: 'backup.example.org', user: 'bkp', path: '/srv/bkp', private_key_file: '/k' });
    expect(s.describe()).toBe('sftp://bkp@backup.example.org:22/srv/bkp');
    expect(new SftpStorage('o', { host: 'h', port: 2222, user: 'u', path: 'rel/dir' }).describe()).toBe('sftp://u@h:2222/~/rel/dir');
  });

  it('streams 100 MB in and out with bounded memory', async () => {
    const storage = storageFor(server, 'big');
    const total = 100 * 1024 * 1024;
    const { stream, digest } = generated(total);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let progressCalls = 0;
    let lastProgress = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const started = Date.now();
      const { size } = await storage.put('app/files/big.bin', stream, (bytes) => {
        progressCalls++;
        lastProgress = bytes;
      });
      const upMs = Date.now() - started;
      expect(size).toBe(total);
      expect(lastProgress).toBe(total);
      expect(progressCalls).toBeGreaterThan(1);
      const downStart = Date.now();
      const back = await sha256Of(await storage.get('app/files/big.bin'));
      if (process.env.BKP_TEST_VERBOSE) console.error(`sftp 100 MB: up ${upMs} ms, down ${Date.now() - downStart} ms, rss +${Math.round((peak - baseline) / 1e6)} MB`);
      expect(back.size).toBe(total);
      expect(back.hex).toBe(digest());
    } finally {
      clearInterval(sampler);
    }
    expect(peak - baseline).toBeLessThan(80 * 1024 * 1024);
    expect(await allFiles(path.join(server.root, 'big'))).toEqual(['app/files/big.bin']);
    const listed = await storage.list('app/');
    expect(listed).toEqual([{ key: 'app/files/big.bin', size: total, modifiedAt: expect.any(Date) }]);
  });

  it('leaves neither the key nor a temp file when the source fails half way', async () => {
    const storage = storageFor(server, 'atomic');
    async function* failing(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 50; i++) yield Buffer.alloc(64 * 1024, i);
      throw new Error('pg_dump: connection lost');
    }
    // The source's own error comes through unchanged: the engine, not the storage, failed.
    await expect(storage.put('app/db/x.dump', Readable.from(failing()))).rejects.toThrow('pg_dump: connection lost');
    expect(await storage.list('')).toEqual([]);
    expect(await allFiles(path.join(server.root, 'atomic'))).toEqual([]);
    await expect(storage.get('app/db/x.dump')).rejects.toThrow(`storage "offsite" (${storage.describe()}): no object app/db/x.dump`);
    // A source that fails while the storage is still connecting: its error, not a crash.
    const early = new Readable({ read() {} });
    setImmediate(() => early.destroy(new Error('pg_dump: could not connect')));
    await expect(storageFor(server, 'atomic').put('app/db/y.dump', early)).rejects.toThrow('pg_dump: could not connect');
    // The connection is still good after the failure.
    await storage.putText('app/db/after', 'ok');
    expect(await storage.getText('app/db/after')).toBe('ok');
  });

  it('replaces an existing object atomically (posix-rename)', async () => {
    const storage = storageFor(server, 'replace');
    await storage.putText('a/manifest.json', '{"v":1}');
    await storage.putText('a/manifest.json', '{"v":2}');
    expect(await storage.getText('a/manifest.json')).toBe('{"v":2}');
    expect(await allFiles(path.join(server.root, 'replace'))).toEqual(['a/manifest.json']);
  });

  it('round-trips text and lists by prefix, recursively, with sizes and times', async () => {
    const storage = storageFor(server, 'list');
    await storage.putText('app/files/a.tar.gz', 'aaa');
    await storage.putText('app/files/a.tar.gz.manifest.json', '{"x":1}');
    await storage.putText('app2/files/b.tar.gz', 'bb');
    await storage.putText('locks/app.json', '{}');
    await storage.putText('empty', '');
    expect(await storage.getText('app/files/a.tar.gz.manifest.json')).toBe('{"x":1}');
    expect(await storage.getText('empty')).toBe('');

    const byPrefix = async (p: string): Promise<string[]> => (await storage.list(p)).map((o) => o.key).sort();
    expect(await byPrefix('app/')).toEqual(['app/files/a.tar.gz', 'app/files/a.tar.gz.manifest.json']);
    expect(await byPrefix('app')).toEqual(['app/files/a.tar.gz', 'app/files/a.tar.gz.manifest.json', 'app2/files/b.tar.gz']);
    expect(await byPrefix('app/files/a.tar.gz.m')).toEqual(['app/files/a.tar.gz.manifest.json']);
    expect(await byPrefix('')).toHaveLength(5);
    expect(await byPrefix('nothing/here/')).toEqual([]);
    const detailed = await storage.list('app2/', { detailed: true });
    expect(detailed).toEqual([{ key: 'app2/files/b.tar.gz', size: 2, modifiedAt: expect.any(Date) }]);
    expect(Math.abs((detailed[0]?.modifiedAt?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);

    // Many folders: the walk is parallel but bounded, and finds everything.
    await Promise.all(Array.from({ length: 40 }, (_, i) => storage.putText(`many/u${i}/d/x.json`, `${i}`)));
    expect(await byPrefix('many/')).toHaveLength(40);

    // A missing root is an empty storage, not an error.
    expect(await storageFor(server, 'list/missing').list('')).toEqual([]);
  });

  it('shows a temp file left by a killed upload as a partial key', async () => {
    const dir = path.join(server.root, 'partial', 'app', 'files');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `a.tar.gz${PARTIAL_MARKER}0123`), 'half');
    const keys = (await storageFor(server, 'partial').list('app/')).map((o) => o.key);
    expect(keys).toEqual([`app/files/a.tar.gz${PARTIAL_MARKER}0123`]);
  });

  it('deletes, tolerates missing keys, and removes emptied folders', async () => {
    const storage = storageFor(server, 'delete');
    await storage.putText('app/files/a', '1');
    await storage.putText('app/other/b', '2');
    await storage.delete('app/files/a');
    await storage.delete('app/files/a');
    const root = path.join(server.root, 'delete');
    expect(existsSync(path.join(root, 'app/files'))).toBe(false);
    expect(existsSync(path.join(root, 'app/other/b'))).toBe(true);
    expect(existsSync(root)).toBe(true);
    // The folder cache does not go stale: writing there again recreates the folder.
    await storage.putText('app/files/c', '3');
    expect(await storage.getText('app/files/c')).toBe('3');
  });

  it('putExclusive refuses an existing key, and exactly one of racing creators wins', async () => {
    const storage = storageFor(server, 'exclusive');
    await storage.putExclusive('locks/app.json', '{"holder":"a"}');
    const second = storage.putExclusive('locks/app.json', '{"holder":"b"}');
    await expect(second).rejects.toBeInstanceOf(AlreadyExistsError);
    await expect(second).rejects.toThrow('locks/app.json already exists');
    expect(await storage.getText('locks/app.json')).toBe('{"holder":"a"}');
    expect(await allFiles(path.join(server.root, 'exclusive'))).toEqual(['locks/app.json']);
    // Racing, from separate connections as separate bkp processes would.
    const racers = Array.from({ length: 8 }, () => storageFor(server, 'exclusive'));
    const results = await Promise.allSettled(racers.map((s, i) => s.putExclusive('locks/race.json', `${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
    expect(await allFiles(path.join(server.root, 'exclusive'))).toEqual(['locks/app.json', 'locks/race.json']);
  });

  it('rejects keys that could leave the root', async () => {
    const storage = storageFor(server, 'keys');
    for (const key of ['/etc/passwd', '../x', 'a/../../x', 'a//b', './a', '']) {
      await expect(storage.putText(key, 'x'), key).rejects.toThrow('invalid key');
      await expect(storage.get(key), key).rejects.toThrow('invalid key');
    }
    await expect(storage.list('../')).rejects.toThrow('invalid prefix');
  });

  it('creates a missing root on checkWritable and leaves no probe behind', async () => {
    const storage = storageFor(server, 'create/a/b');
    await storage.checkWritable();
    expect(await readdir(path.join(server.root, 'create/a/b'))).toEqual([]);
  });

  it('says when the root is a file', async () => {
    await writeFile(path.join(server.root, 'file-root'), 'not a folder');
    const storage = storageFor(server, 'file-root');
    const root = path.join(server.root, 'file-root');
    await expect(storage.checkWritable()).rejects.toThrow(`storage "offsite" (${storage.describe()}): ${root} is a file, not a folder`);
    await expect(storage.list('')).rejects.toThrow(`${root} is a file, not a folder`);
    await expect(storage.putText('a/b', 'x')).rejects.toThrow(`${root} is a file, not a folder`);
  });

  it('says when the folder cannot be written (permission denied)', async () => {
    // As root (CI) chmod stops nobody: sysfs refuses new folders even to root.
    const asRoot = process.getuid?.() === 0;
    let target: string;
    if (asRoot) {
      target = '/sys/fs/bkp-test';
    } else {
      const dir = path.join(server.root, 'readonly');
      await mkdir(dir, { mode: 0o555 });
      target = path.join(dir, 'sub');
    }
    const storage = storageFor(server, '', { path: target });
    const err = await rejection(storage.checkWritable());
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`storage "offsite" (${storage.describe()}): cannot create the folder ${target}: permission denied (as user ${server.user})`);
  });
});

describe('SftpStorage: a full disk on the server', () => {
  const mounts: string[] = [];
  afterAll(() => {
    for (const dir of mounts) execFileSync('umount', [dir], { stdio: 'pipe' });
  });

  it('maps a failed write to a clean error, removes the temp file and keeps earlier objects (1 MB tmpfs)', async () => {
    const dir = path.join(server.root, 'full');
    await mkdir(dir);
    // Never skipped: without the mount there is no honest full disk, so the test fails and says why.
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
      mounts.push(dir);
    } catch (err) {
      throw new Error(`the disk-full test mounts a 1 MB tmpfs and needs root (CAP_SYS_ADMIN): run the tests as root, as CI does (${(err as Error).message})`);
    }
    const storage = storageFor(server, 'full');
    await storage.putText('app/earlier.manifest.json', '{"ok":true}');
    const err = await rejection(storage.put('app/big.tar.gz', generated(5 * 1024 * 1024).stream));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(
      `storage "offsite" (${storage.describe()}): the server failed while writing app/big.tar.gz (SFTP gives no reason: a full disk or a quota on the server is the usual cause)`,
    );
    expect(await allFiles(dir)).toEqual(['app/earlier.manifest.json']);
    // Space came back with the temp file: small writes work again, on the same connection.
    await storage.putText('app/after', 'fine');
    expect(await storage.getText('app/earlier.manifest.json')).toBe('{"ok":true}');
  });
});

describe('SftpStorage: a lost connection', () => {
  it('fails an upload cleanly when the server dies mid-way, and leaves at most a partial file', async () => {
    const own = await startSshd();
    servers.push(own);
    const storage = storageFor(own, 'lost');
    // Big enough to be still running when the server dies.
    const { stream } = generated(4 * 1024 * 1024 * 1024);
    let killedAt = 0;
    const upload = storage.put('app/files/big.bin', stream, (bytes) => {
      if (killedAt === 0 && bytes > 20 * 1024 * 1024) {
        killedAt = Date.now();
        own.kill();
      }
    });
    const err = await rejection(upload);
    expect(killedAt).toBeGreaterThan(0);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(
      new RegExp(
        `^storage "offsite" \\(${storage.describe().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\): connection lost \\(.+\\) while writing app/files/big\\.bin; ` +
          `the unfinished upload app/files/big\\.bin\\.partial-[0-9a-f]{12} may remain on the server: it is not a backup`,
      ),
    );
    expect(stream.destroyed).toBe(true);

    // The server comes back on the same port, keys and root: the same storage reconnects.
    const again = await startSshd({ reuse: own });
    servers.push(again);
    expect(again.port).toBe(own.port);
    // The dead session could not clean up: its temp file stays, listed as a partial key (never as the key).
    const listed = await storage.list('');
    expect(listed).toHaveLength(1);
    expect(listed[0]?.key).toMatch(/^app\/files\/big\.bin\.partial-[0-9a-f]{12}$/);
    expect(err.message).toContain(listed[0]?.key);
    await expect(storage.get('app/files/big.bin')).rejects.toThrow('no object app/files/big.bin');
    await storage.putText('app/files/after.txt', 'back');
    expect(await storage.getText('app/files/after.txt')).toBe('back');
  });

  it('fails a download cleanly when the server dies mid-way', async () => {
    const own = await startSshd();
    servers.push(own);
    const storage = storageFor(own, 'lost-read');
    await storage.put('big.bin', generated(64 * 1024 * 1024).stream);
    const body = await storage.get('big.bin');
    let read = 0;
    const err = await rejection(
      (async () => {
        for await (const chunk of body) {
          read += (chunk as Buffer).length;
          if (read > 8 * 1024 * 1024) own.kill();
        }
      })(),
    );
    expect(err.message).toMatch(/^storage "offsite" \(.+\): connection lost \(.+\) while reading big\.bin$/);
  });
});

describe('SftpStorage: host keys', () => {
  it('refuses an unknown key: host_key is another fingerprint', async () => {
    const other = path.join(tmp, 'other-host-key');
    keygen(other);
    const wrong = sha256Fingerprint(Buffer.from((await readFile(`${other}.pub`, 'utf8')).split(' ')[1] as string, 'base64'));
    const storage = storageFor(server, 'hk', { host_key: wrong });
    const err = await rejection(storage.list(''));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(`storage "offsite" (${storage.describe()}): host key mismatch for 127.0.0.1:${server.port}`);
    expect(err.message).toContain(`the server presented ssh-ed25519 ${server.hostKeyFingerprint}, but host_key is ${wrong}`);
    expect(err.message).toContain(`set host_key: "${server.hostKeyFingerprint}"`);
    // Nothing was written: the check happens before authentication.
    expect(existsSync(path.join(server.root, 'hk'))).toBe(false);
  });

  it('refuses an unknown key: known_hosts has no entry for host:port', async () => {
    const file = path.join(tmp, 'known_hosts_unknown');
    const pub = (await readFile(path.join(server.dir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim();
    // The same key, but for port 22 (not this port) and for another host.
    await writeFile(file, `127.0.0.1 ${pub}\nother.example.org ${pub}\n`);
    const storage = storageFor(server, 'hk', { host_key: undefined, known_hosts_file: file });
    const err = await rejection(storage.checkWritable());
    expect(err.message).toContain(`unknown host key for 127.0.0.1:${server.port}: the server presented ssh-ed25519 ${server.hostKeyFingerprint}, and ${file} has no entry for [127.0.0.1]:${server.port}`);
    expect(err.message).toContain(`set host_key: "${server.hostKeyFingerprint}"`);
    expect(err.message).toContain(`ssh-keyscan -p ${server.port} 127.0.0.1 >> ${file}`);
    const missing = storageFor(server, 'hk', { host_key: undefined, known_hosts_file: path.join(tmp, 'nope') });
    await expect(missing.list('')).rejects.toThrow(`${path.join(tmp, 'nope')} does not exist`);
  });

  it('refuses a changed key: known_hosts lists another key for host:port', async () => {
    const other = path.join(tmp, 'changed-host-key');
    keygen(other);
    const otherPub = (await readFile(`${other}.pub`, 'utf8')).trim().split(' ');
    const file = path.join(tmp, 'known_hosts_changed');
    await writeFile(file, `# old server\n[127.0.0.1]:${server.port} ${otherPub[0]} ${otherPub[1]}\n`);
    const storage = storageFor(server, 'hk', { host_key: undefined, known_hosts_file: file });
    const err = await rejection(storage.list(''));
    expect(err).toBeInstanceOf(UserError);
    const oldFp = sha256Fingerprint(Buffer.from(otherPub[1] as string, 'base64'));
    expect(err.message).toContain(`the host key of 127.0.0.1:${server.port} has CHANGED: the server presented ssh-ed25519 ${server.hostKeyFingerprint}`);
    expect(err.message).toContain(`line 2: ssh-ed25519 ${oldFp}`);
    expect(err.message).toContain(`ssh-keygen -R "[127.0.0.1]:${server.port}" -f ${file}`);
  });

  it('accepts a matching known_hosts entry, plain or hashed', async () => {
    await storageFor(server, 'hk-ok', { host_key: undefined, known_hosts_file: server.knownHostsFile }).checkWritable();
    const hashed = path.join(tmp, 'known_hosts_hashed');
    await writeFile(hashed, await readFile(server.knownHostsFile));
    execFileSync('ssh-keygen', ['-H', '-f', hashed], { stdio: 'pipe' });
    expect(await readFile(hashed, 'utf8')).toMatch(/^\|1\|/);
    await storageFor(server, 'hk-ok', { host_key: undefined, known_hosts_file: hashed }).list('');
  });

  it('accepts any key with insecure_skip_host_key_check (and validate warns)', async () => {
    const storage = storageFor(server, 'hk-insecure', { host_key: undefined, known_hosts_file: path.join(tmp, 'nope'), insecure_skip_host_key_check: true });
    await storage.checkWritable();
    const opts = parseSftpOptions('offsite', { host: 'h', path: '/p', insecure_skip_host_key_check: true });
    expect(sftpOptionWarnings('offsite', opts).map((w) => w.path)).toEqual(['storage.offsite.insecure_skip_host_key_check']);
  });

  it('parses known_hosts patterns as ssh does', () => {
    const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', 'base64');
    const entries = parseKnownHosts(
      [`*.example.org,!bad.example.org ssh-ed25519 ${blob.toString('base64')}`, `@revoked evil.example.org ssh-ed25519 ${blob.toString('base64')}`, 'garbage line', ''].join('\n'),
    );
    expect(entries).toHaveLength(2);
    expect(hostMatches('*.example.org,!bad.example.org', 'a.example.org', 22)).toBe(true);
    expect(hostMatches('*.example.org,!bad.example.org', 'bad.example.org', 22)).toBe(false);
    expect(hostMatches('*.example.org', 'a.example.org', 2222)).toBe(false);
    expect(hostMatches('[a.example.org]:2222', 'a.example.org', 2222)).toBe(true);
    expect(checkKnownHosts(entries, 'a.example.org', 22, blob)).toEqual({ ok: true });
    expect(checkKnownHosts(entries, 'evil.example.org', 22, blob)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(checkKnownHosts(entries, 'bad.example.org', 22, blob)).toMatchObject({ ok: false, reason: 'unknown' });
  });
});

describe('SftpStorage: authentication and reachability', () => {
  it('says clearly when the client key is not authorized', async () => {
    const wrongKey = path.join(tmp, 'wrong-client-key');
    keygen(wrongKey);
    const storage = storageFor(server, 'auth', { private_key_file: wrongKey });
    const err = await rejection(storage.checkWritable());
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(
      `storage "offsite" (${storage.describe()}): authentication failed for user ${server.user} at 127.0.0.1:${server.port} with the key ${wrongKey}: is its public key in that user's authorized_keys on the server?`,
    );
  });

  it('says clearly when the key file is missing', async () => {
    const storage = storageFor(server, 'auth', { private_key_file: path.join(tmp, 'no-such-key') });
    await expect(storage.list('')).rejects.toThrow(`cannot read private_key_file ${path.join(tmp, 'no-such-key')}: no such file`);
  });

  it('says that a passphrase-protected key belongs in the ssh-agent', async () => {
    const encrypted = path.join(tmp, 'encrypted-key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', encrypted], { stdio: 'pipe' });
    const storage = storageFor(server, 'auth', { private_key_file: encrypted });
    const err = await rejection(storage.list(''));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(new RegExp(`^storage "offsite" \\(.+\\): cannot use private_key_file ${encrypted}: .*passphrase.*: bkp does not ask for passphrases; load the key into ssh-agent \\(ssh-add\\) and leave private_key_file unset$`));
  });

  it('uses the ssh-agent without private_key_file, and says when there is none', async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    const sock = path.join(tmp, 'agent.sock');
    let agent: ChildProcess | undefined;
    try {
      delete process.env.SSH_AUTH_SOCK;
      const noAgent = storageFor(server, 'agent', { private_key_file: undefined });
      await expect(noAgent.list('')).rejects.toThrow('no private_key_file is set and no ssh-agent is running (SSH_AUTH_SOCK is not set)');

      agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync('ssh-add', [server.privateKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
      process.env.SSH_AUTH_SOCK = sock;
      const viaAgent = storageFor(server, 'agent', { private_key_file: undefined });
      await viaAgent.putText('x', 'agent');
      expect(await viaAgent.getText('x')).toBe('agent');
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
      agent?.kill();
    }
  });

  it('says clearly when nothing listens on the port', async () => {
    const port = await freePort();
    const storage = storageFor(server, 'x', { port });
    const err = await rejection(storage.checkWritable());
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`storage "offsite" (${storage.describe()}): cannot connect to 127.0.0.1:${port}: connection refused (no SSH server listening there?)`);
  });

  it('gives up on a silent server after the connect timeout', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const sockets = new Set<net.Socket>();
    silent.on('connection', (s) => sockets.add(s));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const storage = new SftpStorage('offsite', { host: '127.0.0.1', port, path: '/x', private_key_file: server.privateKeyFile, host_key: server.hostKeyFingerprint }, { connectTimeoutMs: 1000 });
      const started = Date.now();
      const err = await rejection(storage.list(''));
      expect(Date.now() - started).toBeLessThan(5000);
      expect(err.message).toBe(`storage "offsite" (${storage.describe()}): cannot connect to 127.0.0.1:${port}: no SSH handshake within 1 s (timed out)`);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('the test helper says how to install sshd when it is missing', async () => {
    const saved = process.env.BKP_TEST_SSHD;
    process.env.BKP_TEST_SSHD = path.join(tmp, 'no-sshd');
    try {
      await expect(startSshd()).rejects.toThrow(/is not an executable file\. .*bash scripts\/ensure-test-deps\.sh.*apt-get install openssh-server/);
    } finally {
      if (saved === undefined) delete process.env.BKP_TEST_SSHD;
      else process.env.BKP_TEST_SSHD = saved;
    }
  });

  it('validates options read from a policy', () => {
    expect(parseSftpOptions('offsite', { host: 'h', path: '/p', port: 2222, user: 'u', host_key: 'SHA256:abc' })).toEqual({ host: 'h', path: '/p', port: 2222, user: 'u', host_key: 'SHA256:abc' });
    expect(() => parseSftpOptions('offsite', { path: '/p' })).toThrow('storage "offsite": sftp storage needs "host"');
    expect(() => parseSftpOptions('offsite', { host: 'h', path: '/p', host_key: 'abc' })).toThrow('"host_key" must be a fingerprint like SHA256:');
  });
});
