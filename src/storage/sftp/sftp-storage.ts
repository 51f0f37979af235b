import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { UserError } from '../../core/diagnostics.js';
import { AlreadyExistsError, PARTIAL_MARKER, type OnProgress, type Storage, type StoredObject } from '../types.js';
import { ConnectionLostError, SFTP_STATUS, SftpConnection, UnsupportedExtensionError, sftpStatus } from './connection.js';
import {
  type KnownHostEntry,
  algorithmsForKeyType,
  checkKnownHosts,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  readKnownHosts,
  sameFingerprint,
  sha256Fingerprint,
} from './host-key.js';
import { type SftpOptions, type SftpTuning, defaultUser } from './options.js';
import { SftpFileSink, SftpFileSource } from './streams.js';
import { assertValidKey } from '../keys.js';

export type { SftpOptions, SftpTuning } from './options.js';
export { parseSftpOptions, sftpOptionWarnings } from './options.js';

/** ssh2's default host key algorithms, in its order (known_hosts types are moved to the front). */
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Concurrent READDIR walks while listing (OpenSSH allows a few hundred open handles per session). */
const LIST_CONCURRENCY = 16;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function errorLevel(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'level' in err && typeof err.level === 'string') return err.level;
  return undefined;
}

/** What the host key check saw, for the error message when ssh2 only says "Host denied". */
interface HostKeyRefusal {
  message: string;
}

/**
 * A folder on an SSH server, over SFTP (DESIGN §6). One connection, opened on first use and
 * reused (reopened after a loss); `close()` ends it. Uploads go to `<key>.partial-<hex>` with
 * pipelined writes, are fsynced (fsync@openssh.com) and renamed into place with
 * posix-rename@openssh.com, so a failed source or a lost connection never leaves an object under
 * its real key (at worst a `.partial-` file, which `list` shows as such).
 */
export class SftpStorage implements Storage {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The root as written in the policy. */
  readonly path: string;
  private readonly options: SftpOptions;
  private readonly connectTimeoutMs: number;
  private readonly keepaliveIntervalMs: number;
  private conn: Promise<SftpConnection> | undefined;
  /** Absolute root on the server (a relative `path` is resolved against the login folder). */
  private root: string | undefined;
  /** Folders known to exist, to skip MKDIR round trips; dropped when a delete may remove them. */
  private readonly knownDirs = new Set<string>();

  constructor(name: string, options: SftpOptions, tuning: SftpTuning = {}) {
    this.name = name;
    this.options = options;
    this.host = options.host;
    this.port = options.port ?? 22;
    this.user = options.user ?? defaultUser();
    this.path = options.path;
    this.connectTimeoutMs = tuning.connectTimeoutMs ?? 20_000;
    this.keepaliveIntervalMs = tuning.keepaliveIntervalMs ?? 10_000;
    if (path.posix.isAbsolute(options.path)) this.root = path.posix.normalize(options.path).replace(/(.)\/+$/, '$1');
  }

  describe(): string {
    const p = path.posix.isAbsolute(this.path) ? this.path : `/~/${this.path}`;
    return `sftp://${this.user}@${this.host}:${this.port}${p}`;
  }

  /** Ends the connection (pending requests fail). The next operation reconnects. */
  async close(): Promise<void> {
    const pending = this.conn;
    this.conn = undefined;
    if (!pending) return;
    const conn = await pending.catch(() => undefined);
    await conn?.end();
  }

  async checkWritable(): Promise<void> {
    const conn = await this.connection();
    const root = await this.rootPath(conn);
    await this.ensureRoot(conn, root);
    const probe = `.bkp-probe-${randomBytes(6).toString('hex')}`;
    const file = `${root}/${probe}`;
    try {
      const handle = await conn.open(file, 'wx');
      try {
        await conn.write(handle, Buffer.from('bkp write probe\n'), 0);
      } finally {
        await conn.close(handle).catch(() => undefined);
      }
    } catch (err) {
      await conn.unlink(file).catch(() => undefined);
      if (sftpStatus(err) === SFTP_STATUS.PERMISSION_DENIED) throw this.userError(`cannot write to the folder ${root}: permission denied (as user ${this.user})`);
      throw this.wrap(err, 'write', probe);
    }
    await conn.unlink(file).catch((err: unknown) => {
      throw this.wrap(err, 'delete', probe);
    });
  }

  /** Sizes and times come with READDIR, so every listing has them (`detailed` costs nothing more). */
  async list(prefix: string, _opts: { detailed?: boolean } = {}): Promise<StoredObject[]> {
    if (prefix !== '') this.checkKey(prefix.replace(/\/+$/, ''), { prefix: true });
    try {
      const conn = await this.connection();
      const root = await this.rootPath(conn);
      const dirKey = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
      const out: StoredObject[] = [];
      const queue: string[] = [dirKey];
      let active = 0;
      let failure: unknown;
      await new Promise<void>((resolve) => {
        const pump = () => {
          while (failure === undefined && active < LIST_CONCURRENCY && queue.length > 0) {
            const key = queue.shift() as string;
            active++;
            this.listFolder(conn, root, key, prefix, out)
              .then((subfolders) => queue.push(...subfolders), (err: unknown) => {
                failure ??= err;
              })
              .finally(() => {
                active--;
                pump();
              });
          }
          if (active === 0 && (queue.length === 0 || failure !== undefined)) resolve();
        };
        pump();
      });
      if (failure !== undefined) throw failure;
      return out;
    } catch (err) {
      throw this.wrap(err, 'list', prefix || '/');
    }
  }

  async put(key: string, body: Readable, onProgress?: OnProgress): Promise<{ size: number }> {
    const remote = this.remoteFile(key);
    const suffix = `${PARTIAL_MARKER}${randomBytes(6).toString('hex')}`;
    let size = 0;
    // The source's own errors (the engine failed) are rethrown as they are, as local storage does.
    let sourceFailed = false;
    let conn: SftpConnection | undefined;
    let sink: SftpFileSink | undefined;
    let temp: string | undefined;
    // Connecting can take seconds: a source failing meanwhile must not be an unhandled 'error'.
    let bodyError: unknown;
    body.on('error', (err: unknown) => {
      bodyError ??= err;
    });
    try {
      conn = await this.connection();
      const file = this.absolute(await this.rootPath(conn), remote);
      temp = `${file}${suffix}`;
      const handle = await this.openNew(conn, temp);
      sink = new SftpFileSink(conn, handle);
      const count = async function* (source: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
        try {
          for await (const chunk of source) {
            const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            size += buf.length;
            onProgress?.(size);
            yield buf;
          }
        } catch (err) {
          sourceFailed = true;
          throw err;
        }
      };
      await pipeline(body, count, sink);
      await this.renameInto(conn, temp, file);
    } catch (err) {
      body.destroy();
      await sink?.handleDone;
      if (conn && temp && !conn.isLost) await conn.unlink(temp).catch(() => undefined);
      // Tearing the pipeline down after a failed write also errors the source: the sink decides.
      const storageFailed = sink?.writeError !== undefined || err instanceof ConnectionLostError || sftpStatus(err) !== undefined;
      if ((sourceFailed || (bodyError !== undefined && err === bodyError)) && !storageFailed) throw err;
      throw this.wrap(err, 'write', key, conn?.isLost && temp ? `${key}${suffix}` : undefined);
    }
    return { size };
  }

  async putText(key: string, text: string): Promise<void> {
    await this.put(key, Readable.from([Buffer.from(text, 'utf8')]));
  }

  /**
   * The lock appears whole or not at all: written under a temp name, then hard-linked to `key`
   * (hardlink@openssh.com: link(2) fails when `key` exists). Servers without that extension get
   * an exclusive open (O_CREAT|O_EXCL) of `key` itself.
   */
  async putExclusive(key: string, text: string): Promise<void> {
    const remote = this.remoteFile(key);
    const data = Buffer.from(text, 'utf8');
    let conn: SftpConnection | undefined;
    let temp: string | undefined;
    try {
      conn = await this.connection();
      const file = this.absolute(await this.rootPath(conn), remote);
      temp = `${file}${PARTIAL_MARKER}${randomBytes(6).toString('hex')}`;
      await this.writeSmall(conn, temp, data);
      await this.createExclusive(conn, temp, file, data, key);
    } catch (err) {
      throw this.wrap(err, 'write', key);
    } finally {
      if (conn && temp && !conn.isLost) await conn.unlink(temp).catch(() => undefined);
    }
  }

  /** Links `temp` to `file`, or (without hardlink@openssh.com) creates `file` with O_EXCL. */
  private async createExclusive(conn: SftpConnection, temp: string, file: string, data: Buffer, key: string): Promise<void> {
    try {
      try {
        await conn.hardlink(temp, file);
      } catch (err) {
        if (!(err instanceof UnsupportedExtensionError)) throw err;
        await this.writeSmall(conn, file, data);
      }
    } catch (err) {
      // SFTP v3 has no "already exists" status: OpenSSH answers FAILURE (EEXIST), so look.
      if (sftpStatus(err) === SFTP_STATUS.FAILURE && (await this.exists(conn, file))) throw new AlreadyExistsError(key);
      throw err;
    }
  }

  async get(key: string): Promise<Readable> {
    const remote = this.remoteFile(key);
    try {
      const conn = await this.connection();
      const handle = await conn.open(this.absolute(await this.rootPath(conn), remote), 'r');
      // Errors while streaming name the storage and the key, like errors before it.
      return new SftpFileSource(conn, handle, (err) => this.readError(err, key));
    } catch (err) {
      throw this.readError(err, key);
    }
  }

  async getText(key: string): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.get(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async delete(key: string): Promise<void> {
    const remote = this.remoteFile(key);
    try {
      const conn = await this.connection();
      const root = await this.rootPath(conn);
      const file = this.absolute(root, remote);
      try {
        await conn.unlink(file);
      } catch (err) {
        if (sftpStatus(err) !== SFTP_STATUS.NO_SUCH_FILE) throw err;
      }
      await this.removeEmptyParents(conn, root, path.posix.dirname(file));
    } catch (err) {
      throw this.wrap(err, 'delete', key);
    }
  }

  // ---- connection ----------------------------------------------------------------------------

  private connection(): Promise<SftpConnection> {
    const current = this.conn;
    if (current) {
      // Callers that share a connect attempt share its failure; a lost connection is reopened.
      return current.then((c) => {
        if (!c.isLost) return c;
        if (this.conn === current) this.conn = undefined;
        return this.connection();
      });
    }
    const opening = this.connect();
    this.conn = opening;
    // A failed connect is not cached: the next operation tries again (and reports its own error).
    opening.catch(() => {
      if (this.conn === opening) this.conn = undefined;
    });
    return opening.then((c) => {
      this.knownDirs.clear();
      return c;
    });
  }

  private async connect(): Promise<SftpConnection> {
    const where = `${this.host}:${this.port}`;
    const config: ConnectConfig = {
      host: this.host,
      port: this.port,
      username: this.user,
      readyTimeout: this.connectTimeoutMs,
      keepaliveInterval: this.keepaliveIntervalMs,
      keepaliveCountMax: 3,
    };
    let authWith: string;
    if (this.options.private_key_file) {
      const file = this.options.private_key_file;
      try {
        config.privateKey = await readFile(file);
      } catch (err) {
        const code = errorCode(err);
        const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
        throw this.userError(`cannot read private_key_file ${file}: ${reason}`);
      }
      authWith = `the key ${file}`;
    } else {
      const agent = process.env.SSH_AUTH_SOCK;
      if (!agent) {
        throw this.userError('no private_key_file is set and no ssh-agent is running (SSH_AUTH_SOCK is not set): set private_key_file, or start ssh-agent and add the key with ssh-add');
      }
      config.agent = agent;
      authWith = `the keys of the ssh-agent (${agent})`;
    }

    let refusal: HostKeyRefusal | undefined;
    const verifier = await this.hostKeyVerifier((r) => {
      refusal = r;
    });
    config.hostVerifier = verifier.verify;
    if (verifier.preferred.length > 0) {
      const first = verifier.preferred.filter((a) => HOST_KEY_ALGORITHMS.includes(a));
      config.algorithms = { serverHostKey: [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))] };
    }

    try {
      const conn = await SftpConnection.open(config, `bkp:${this.name}`);
      return conn;
    } catch (err) {
      if (refusal) throw this.userError(refusal.message);
      const code = errorCode(err);
      const level = errorLevel(err);
      const msg = errorMessage(err);
      if (code === 'ECONNREFUSED') throw this.userError(`cannot connect to ${where}: connection refused (no SSH server listening there?)`);
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || level === 'client-dns') throw this.userError(`cannot resolve the host name ${this.host}`);
      if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') throw this.userError(`cannot connect to ${where}: host unreachable`);
      if (code === 'ETIMEDOUT' || level === 'client-timeout') {
        throw this.userError(`cannot connect to ${where}: no SSH handshake within ${Math.round(this.connectTimeoutMs / 100) / 10} s (timed out)`);
      }
      if (level === 'client-authentication') {
        throw this.userError(`authentication failed for user ${this.user} at ${where} with ${authWith}: is its public key in that user's authorized_keys on the server?`);
      }
      if (level === 'agent') throw this.userError(`the ssh-agent at ${config.agent} failed: ${msg}`);
      if (/privateKey|private key|passphrase/i.test(msg)) {
        const hint = /passphrase|encrypted/i.test(msg) ? ': bkp does not ask for passphrases; load the key into ssh-agent (ssh-add) and leave private_key_file unset' : '';
        throw this.userError(`cannot use private_key_file ${this.options.private_key_file}: ${msg}${hint}`);
      }
      throw this.userError(`cannot connect to ${where}: ${msg}`);
    }
  }

  /**
   * The ssh2 host verifier for the configured check: `host_key` (a fingerprint) wins, then
   * `known_hosts_file`, then the user's and the system's known_hosts, as ssh reads them.
   */
  private async hostKeyVerifier(refuse: (r: HostKeyRefusal) => void): Promise<{ verify: (key: Buffer) => boolean; preferred: ServerHostKeyAlgorithm[] }> {
    const where = `${this.host}:${this.port}`;
    const shown = (blob: Buffer) => `${keyTypeOf(blob)} ${sha256Fingerprint(blob)}`;
    if (this.options.insecure_skip_host_key_check) return { verify: () => true, preferred: [] };

    const expected = this.options.host_key;
    if (expected) {
      return {
        preferred: [],
        verify: (blob) => {
          const seen = sha256Fingerprint(blob);
          if (sameFingerprint(seen, expected)) return true;
          refuse({
            message:
              `host key mismatch for ${where}: the server presented ${shown(blob)}, but host_key is ${expected}. ` +
              `Either the server's key changed (reinstalled server) or another machine answers (a man in the middle): check the fingerprint on the server ` +
              `(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and, if it is right, set host_key: "${seen}"`,
          });
          return false;
        },
      };
    }

    const files = this.options.known_hosts_file ? [this.options.known_hosts_file] : [path.join(homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
    const entries: KnownHostEntry[] = [];
    let anyFile = false;
    for (const file of files) {
      try {
        const read = await readKnownHosts(file);
        anyFile ||= !read.missing;
        entries.push(...read.entries);
      } catch (err) {
        throw this.userError(`cannot read known_hosts file ${file}: ${errorMessage(err)}`);
      }
    }
    const fileNames = files.join(' or ');
    const hostName = knownHostsName(this.host, this.port);
    return {
      preferred: knownKeyTypes(entries, this.host, this.port).flatMap(algorithmsForKeyType) as ServerHostKeyAlgorithm[],
      verify: (blob) => {
        const verdict = checkKnownHosts(entries, this.host, this.port, blob);
        if (verdict.ok) return true;
        const fp = sha256Fingerprint(blob);
        const target = this.options.known_hosts_file ?? files[0];
        const trust =
          `set host_key: "${fp}" on the storage, or add the key to ${target} (ssh-keyscan -p ${this.port} ${this.host} >> ${target}), ` +
          `after checking that fingerprint against the server's own key (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server)`;
        if (verdict.reason === 'unknown') {
          const why = anyFile ? `${fileNames} has no entry for ${hostName}` : `${fileNames} does not exist`;
          refuse({ message: `unknown host key for ${where}: the server presented ${shown(blob)}, and ${why}. To trust it, ${trust}.` });
        } else if (verdict.reason === 'changed') {
          refuse({
            message:
              `the host key of ${where} has CHANGED: the server presented ${shown(blob)}, but ${fileNames} ${verdict.detail}. ` +
              `Someone may be intercepting the connection (man in the middle), or the server was reinstalled. If the change is expected, ` +
              `remove the old entry (ssh-keygen -R "${hostName}" -f ${target}), then ${trust}.`,
          });
        } else {
          refuse({ message: `the host key of ${where} (${shown(blob)}) is refused: ${verdict.detail} in ${fileNames}` });
        }
        return false;
      },
    };
  }

  // ---- paths and folders ---------------------------------------------------------------------

  private checkKey(key: string, { prefix = false } = {}): void {
    assertValidKey(key, `storage "${this.name}" (${this.describe()})`, { prefix });
  }

  /** Validates a key; the result is joined to the root once it is known. */
  private remoteFile(key: string): string {
    this.checkKey(key);
    return key;
  }

  private absolute(root: string, key: string): string {
    return root === '/' ? `/${key}` : `${root}/${key}`;
  }

  private async rootPath(conn: SftpConnection): Promise<string> {
    if (this.root) return this.root;
    const home = await conn.realpath('.');
    this.root = path.posix.join(home, this.path).replace(/(.)\/+$/, '$1');
    return this.root;
  }

  private async exists(conn: SftpConnection, file: string): Promise<boolean> {
    try {
      await conn.stat(file);
      return true;
    } catch {
      return false;
    }
  }

  /** mkdir -p on the server, from the deepest existing folder down. */
  private async makeFolders(conn: SftpConnection, dir: string): Promise<void> {
    if (this.knownDirs.has(dir) || dir === '/' || dir === '.') return;
    try {
      await conn.mkdir(dir);
    } catch (err) {
      const status = sftpStatus(err);
      if (status === SFTP_STATUS.NO_SUCH_FILE) {
        await this.makeFolders(conn, path.posix.dirname(dir));
        await conn.mkdir(dir).catch(async (again: unknown) => {
          if (!(await this.isFolder(conn, dir))) throw again;
        });
      } else if (!(await this.isFolder(conn, dir))) {
        // OpenSSH answers FAILURE for an existing entry: a folder is fine, a file is not.
        if (status === SFTP_STATUS.FAILURE && (await this.exists(conn, dir))) throw this.userError(`${dir} is a file, not a folder`);
        throw err;
      }
    }
    this.knownDirs.add(dir);
  }

  private async isFolder(conn: SftpConnection, dir: string): Promise<boolean> {
    try {
      return (await conn.stat(dir)).isDirectory();
    } catch {
      return false;
    }
  }

  private async ensureRoot(conn: SftpConnection, root: string): Promise<void> {
    try {
      const s = await conn.stat(root);
      if (!s.isDirectory()) throw this.userError(`${root} is a file, not a folder`);
      this.knownDirs.add(root);
      return;
    } catch (err) {
      if (err instanceof UserError) throw err;
      if (sftpStatus(err) !== SFTP_STATUS.NO_SUCH_FILE) throw this.wrap(err, 'write', root);
    }
    try {
      await this.makeFolders(conn, root);
    } catch (err) {
      if (err instanceof UserError) throw err;
      if (sftpStatus(err) === SFTP_STATUS.PERMISSION_DENIED) throw this.userError(`cannot create the folder ${root}: permission denied (as user ${this.user})`);
      throw this.wrap(err, 'write', root);
    }
  }

  /**
   * Opens a new file exclusively, creating parent folders. Retries once when a concurrent delete
   * removed the (then empty) parent folder between mkdir and open.
   */
  private async openNew(conn: SftpConnection, file: string): Promise<Buffer> {
    const dir = path.posix.dirname(file);
    for (let attempt = 0; ; attempt++) {
      await this.makeFolders(conn, dir);
      try {
        return await conn.open(file, 'wx');
      } catch (err) {
        if (sftpStatus(err) !== SFTP_STATUS.NO_SUCH_FILE || attempt > 0) throw err;
        this.knownDirs.delete(dir);
      }
    }
  }

  private async writeSmall(conn: SftpConnection, file: string, data: Buffer): Promise<void> {
    const handle = await this.openNew(conn, file);
    try {
      if (data.length > 0) await conn.write(handle, data, 0);
      await conn.fsync(handle).catch((err: unknown) => {
        if (!(err instanceof UnsupportedExtensionError)) throw err;
      });
    } catch (err) {
      await conn.close(handle).catch(() => undefined);
      await conn.unlink(file).catch(() => undefined);
      throw err;
    }
    await conn.close(handle);
  }

  /**
   * Moves a finished upload into place. posix-rename@openssh.com replaces an existing object
   * atomically; without it (not OpenSSH), SFTP v3 rename refuses an existing target, so the old
   * object is removed first (a short window without it: the only non-atomic path).
   */
  private async renameInto(conn: SftpConnection, from: string, to: string): Promise<void> {
    try {
      await conn.posixRename(from, to);
      return;
    } catch (err) {
      if (!(err instanceof UnsupportedExtensionError)) throw err;
    }
    try {
      await conn.rename(from, to);
    } catch (err) {
      if (sftpStatus(err) !== SFTP_STATUS.FAILURE || !(await this.exists(conn, to))) throw err;
      await conn.unlink(to);
      await conn.rename(from, to);
    }
  }

  /** Deleting the last backup of a unit removes its now-empty folders, up to (not including) the root. */
  private async removeEmptyParents(conn: SftpConnection, root: string, dir: string): Promise<void> {
    for (let cur = dir; cur !== root && cur.startsWith(`${root}/`); cur = path.posix.dirname(cur)) {
      this.knownDirs.delete(cur);
      try {
        await conn.rmdir(cur);
      } catch (err) {
        if (err instanceof ConnectionLostError) throw err;
        return; // not empty, already gone, or not ours to remove
      }
    }
  }

  /** One READDIR: files matching the prefix go to `out`; returns the subfolders worth descending. */
  private async listFolder(conn: SftpConnection, root: string, dirKey: string, prefix: string, out: StoredObject[]): Promise<string[]> {
    const dir = dirKey === '' ? root : this.absolute(root, dirKey);
    let entries;
    try {
      entries = await conn.readdir(dir);
    } catch (err) {
      if (sftpStatus(err) !== SFTP_STATUS.NO_SUCH_FILE) throw err;
      // A missing root is an empty storage; a root that is a file is a mistake worth saying.
      if (dirKey === '' && (await this.exists(conn, root))) throw this.userError(`${root} is a file, not a folder`);
      return [];
    }
    const subfolders: string[] = [];
    for (const entry of entries) {
      if (entry.filename === '.' || entry.filename === '..') continue;
      const key = dirKey === '' ? entry.filename : `${dirKey}/${entry.filename}`;
      if (entry.attrs.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) subfolders.push(key);
      } else if (entry.attrs.isFile() && key.startsWith(prefix)) {
        out.push({ key, size: entry.attrs.size, modifiedAt: new Date(entry.attrs.mtime * 1000) });
      }
    }
    return subfolders;
  }

  // ---- errors --------------------------------------------------------------------------------

  private userError(message: string): UserError {
    return new UserError(`storage "${this.name}" (${this.describe()}): ${message}`);
  }

  /** One message shape for every failure: which storage, what was being done, to which key. */
  private wrap(err: unknown, action: 'write' | 'delete' | 'list', key: string, leftover?: string): Error {
    if (err instanceof UserError || err instanceof AlreadyExistsError) return err;
    const what = action === 'write' ? 'writing' : action === 'delete' ? 'deleting' : 'listing';
    if (err instanceof ConnectionLostError) {
      const rest = leftover ? `; the unfinished upload ${leftover} may remain on the server: it is not a backup, and a later plan cleans it up` : '';
      return this.userError(`${err.message} while ${what} ${key}${rest}`);
    }
    const status = sftpStatus(err);
    if (status === SFTP_STATUS.PERMISSION_DENIED) return this.userError(`permission denied while ${what} ${key} (as user ${this.user})`);
    if (status === SFTP_STATUS.FAILURE && action === 'write') {
      return this.userError(`the server failed while ${what} ${key} (SFTP gives no reason: a full disk or a quota on the server is the usual cause)`);
    }
    return new Error(`storage "${this.name}" (${this.describe()}): error while ${what} ${key}: ${errorMessage(err)}`, { cause: err });
  }

  private readError(err: unknown, key: string): Error {
    if (err instanceof UserError) return err;
    const status = sftpStatus(err);
    if (status === SFTP_STATUS.NO_SUCH_FILE) return this.userError(`no object ${key}`);
    if (status === SFTP_STATUS.PERMISSION_DENIED) return this.userError(`permission denied while reading ${key} (as user ${this.user})`);
    if (err instanceof ConnectionLostError) return this.userError(`${err.message} while reading ${key}`);
    return new Error(`storage "${this.name}" (${this.describe()}): error while reading ${key}: ${errorMessage(err)}`, { cause: err });
  }
}
