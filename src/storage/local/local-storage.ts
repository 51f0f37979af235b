import { randomBytes } from 'node:crypto';
import { type FileHandle, link, lstat, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../../core/diagnostics.js';
import { AlreadyExistsError, PARTIAL_MARKER, type OnProgress, type Storage, type StoredObject } from '../types.js';
import { assertValidKey } from '../keys.js';

/** Errors the user can act on (a full disk, a read-only mount): shown as one line, no stack. */
const ENVIRONMENT_CODES: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a parent of the path is a file, not a folder',
  EISDIR: 'the path is a folder',
};

function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A Writable over a FileHandle that fsyncs before it finishes and leaves the handle open for the
 * caller to close (fs.WriteStream either closes the handle itself or never signals the end).
 */
function fileSink(fh: FileHandle): Writable {
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      fh.write(chunk).then(() => callback(), callback);
    },
    writev(chunks, callback) {
      fh.writev(chunks.map((c) => c.chunk as Buffer)).then(() => callback(), callback);
    },
    final(callback) {
      fh.sync().then(() => callback(), callback);
    },
  });
}

/** mkdir -p that reports the real reason of a failure. */
async function makeFolders(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    return;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
  // Node reports any failure inside a recursive mkdir as ENOENT (EROFS included): redo it one
  // level at a time to get the real error code.
  const levels: string[] = [];
  for (let cur = dir; path.dirname(cur) !== cur; cur = path.dirname(cur)) levels.unshift(cur);
  for (const level of levels) {
    await mkdir(level).catch((err: unknown) => {
      if (errorCode(err) !== 'EEXIST') throw err;
    });
  }
}

/**
 * A folder on this machine: the embedded default storage (DESIGN §4, §6).
 * Every write goes to `<key>.partial-<hex>`, is fsynced, then renamed, so a crash or a failing
 * source never leaves a half-written object under its real key.
 */
export class LocalStorage implements Storage {
  readonly name: string;
  /** Absolute path of the storage folder. */
  readonly root: string;

  constructor(name: string, root: string) {
    this.name = name;
    this.root = path.resolve(root);
  }

  describe(): string {
    return `local:${this.root}`;
  }

  async checkWritable(): Promise<void> {
    await this.ensureRoot();
    const probe = `.bkp-probe-${randomBytes(6).toString('hex')}`;
    const file = path.join(this.root, probe);
    try {
      const fh = await open(file, 'wx');
      try {
        await fh.writeFile('bkp write probe\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await unlink(file).catch(() => undefined);
      const reason = ENVIRONMENT_CODES[errorCode(err) ?? ''];
      if (reason) throw new UserError(`storage "${this.name}" (${this.root}): cannot write to the folder: ${reason}`);
      throw this.wrap(err, 'write', probe);
    }
    await unlink(file);
  }

  /** Sizes and times cost a stat per file: only with `detailed` (planning lists a lot of keys). */
  async list(prefix: string, opts: { detailed?: boolean } = {}): Promise<StoredObject[]> {
    if (prefix !== '') this.checkKey(prefix.replace(/\/+$/, ''), { prefix: true });
    const rootStat = await stat(this.root).catch((err: unknown) => {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw this.wrap(err, 'list', prefix || '/');
    });
    if (!rootStat) return [];
    if (!rootStat.isDirectory()) throw this.notAFolder(this.root);
    // Walk only the folder that can hold matches: `app/files/2026` starts in `app/files`.
    const dirKey = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const out: StoredObject[] = [];
    await this.walk(dirKey, prefix, out);
    if (opts.detailed) await this.addDetails(out);
    return out;
  }

  async put(key: string, body: Readable, onProgress?: OnProgress): Promise<{ size: number }> {
    const file = this.resolveKey(key);
    const temp = `${file}${PARTIAL_MARKER}${randomBytes(6).toString('hex')}`;
    let size = 0;
    // Errors thrown while reading `body` are the source's (the engine failed), not the storage's:
    // they are rethrown as they are, so the user sees the engine's message.
    let sourceFailed = false;
    try {
      const fh = await this.openNew(temp);
      try {
        const count = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
          try {
            for await (const chunk of source) {
              size += chunk.length;
              onProgress?.(size);
              yield chunk;
            }
          } catch (err) {
            sourceFailed = true;
            throw err;
          }
        };
        // pipeline() gives backpressure end to end: memory stays constant whatever the size.
        await pipeline(body, count, fileSink(fh));
      } finally {
        await fh.close().catch(() => undefined);
      }
      await rename(temp, file);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      if (sourceFailed) throw err;
      throw this.wrap(err, 'write', key);
    }
    await this.syncFolder(path.dirname(file));
    return { size };
  }

  async putText(key: string, text: string): Promise<void> {
    await this.put(key, Readable.from([Buffer.from(text, 'utf8')]));
  }

  async putExclusive(key: string, text: string): Promise<void> {
    const file = this.resolveKey(key);
    const temp = `${file}${PARTIAL_MARKER}${randomBytes(6).toString('hex')}`;
    try {
      await this.writeSmall(temp, text);
      // link() fails with EEXIST atomically, and the lock appears whole: a reader never sees
      // a half-written lock file, which a plain open('wx') + write would allow.
      await link(temp, file).catch(async (err: unknown) => {
        const code = errorCode(err);
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
          // Some file systems (FUSE, SMB) cannot hard-link: fall back to an exclusive open.
          await this.writeSmall(file, text);
          return;
        }
        throw err;
      });
    } catch (err) {
      if (errorCode(err) === 'EEXIST') throw new AlreadyExistsError(key);
      throw this.wrap(err, 'write', key);
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    await this.syncFolder(path.dirname(file));
  }

  async get(key: string): Promise<Readable> {
    const file = this.resolveKey(key);
    // Opening first turns a missing key into an error here, not a late 'error' event on the stream.
    const fh = await open(file, 'r').catch((err: unknown) => {
      throw this.readError(err, key);
    });
    // 1 MiB reads: the default 64 KiB chunks cost 3x the CPU (and GC) on a multi-GB artifact.
    return fh.createReadStream({ highWaterMark: 1024 * 1024 });
  }

  async getText(key: string): Promise<string> {
    const file = this.resolveKey(key);
    return readFile(file, 'utf8').catch((err: unknown) => {
      throw this.readError(err, key);
    });
  }

  async delete(key: string): Promise<void> {
    const file = this.resolveKey(key);
    try {
      await unlink(file);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw this.wrap(err, 'delete', key);
    }
    await this.removeEmptyParents(path.dirname(file));
  }

  // ---- helpers -------------------------------------------------------------------------------

  private checkKey(key: string, { prefix = false } = {}): void {
    assertValidKey(key, `storage "${this.name}" (${this.root})`, { prefix });
  }

  private resolveKey(key: string): string {
    this.checkKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  private notAFolder(p: string): UserError {
    return new UserError(`storage "${this.name}" (${this.root}): ${p} is a file, not a folder`);
  }

  /** One message shape for every failure: which storage, what was being done, to which key. */
  private wrap(err: unknown, action: 'write' | 'delete' | 'list', key: string): Error {
    if (err instanceof UserError || err instanceof AlreadyExistsError) return err;
    const code = errorCode(err);
    const what = action === 'write' ? 'writing' : action === 'delete' ? 'deleting' : 'listing';
    const reason = code ? ENVIRONMENT_CODES[code] : undefined;
    if (reason) return new UserError(`storage "${this.name}" (${this.root}): ${reason} while ${what} ${key}`);
    return new Error(`storage "${this.name}" (${this.root}): error while ${what} ${key}: ${errorMessage(err)}`, { cause: err });
  }

  private readError(err: unknown, key: string): Error {
    if (errorCode(err) === 'ENOENT') return new UserError(`storage "${this.name}" (${this.root}): no object ${key}`);
    const reason = ENVIRONMENT_CODES[errorCode(err) ?? ''];
    if (reason) return new UserError(`storage "${this.name}" (${this.root}): ${reason} while reading ${key}`);
    return new Error(`storage "${this.name}" (${this.root}): error while reading ${key}: ${errorMessage(err)}`, { cause: err });
  }

  /** Creates the root when missing; says clearly when it, or one of its parents, is a file. */
  private async ensureRoot(): Promise<void> {
    try {
      const s = await stat(this.root);
      if (!s.isDirectory()) throw this.notAFolder(this.root);
      return;
    } catch (err) {
      if (err instanceof UserError) throw err;
      const code = errorCode(err);
      if (code === 'ENOTDIR') throw this.notAFolder(await this.fileAncestor(this.root));
      if (code !== 'ENOENT') throw this.wrap(err, 'write', this.root);
    }
    try {
      await makeFolders(this.root);
    } catch (err) {
      if (errorCode(err) === 'ENOTDIR') throw this.notAFolder(await this.fileAncestor(this.root));
      const reason = ENVIRONMENT_CODES[errorCode(err) ?? ''];
      if (reason) throw new UserError(`storage "${this.name}" (${this.root}): cannot create the folder: ${reason}`);
      throw err;
    }
  }

  /** The nearest ancestor of `p` that exists and is not a folder (for the "is a file" message). */
  private async fileAncestor(p: string): Promise<string> {
    for (let cur = p; ; cur = path.dirname(cur)) {
      const s = await lstat(cur).catch(() => undefined);
      if (s && !s.isDirectory()) return cur;
      if (path.dirname(cur) === cur) return p;
    }
  }

  /**
   * Opens a new file exclusively, creating parent folders. Retries once when a concurrent
   * delete removed the (then empty) parent folder between mkdir and open.
   */
  private async openNew(file: string): Promise<FileHandle> {
    for (let attempt = 0; ; attempt++) {
      await makeFolders(path.dirname(file)).catch(async (err: unknown) => {
        if (errorCode(err) === 'ENOTDIR') throw this.notAFolder(await this.fileAncestor(path.dirname(file)));
        throw err;
      });
      try {
        return await open(file, 'wx');
      } catch (err) {
        if (errorCode(err) !== 'ENOENT' || attempt > 0) throw err;
      }
    }
  }

  private async writeSmall(file: string, text: string): Promise<void> {
    const fh = await this.openNew(file);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(file).catch(() => undefined);
      throw err;
    }
    await fh.close();
  }

  /** fsync the folder so the rename itself survives a power cut. Best effort: some file systems refuse. */
  private async syncFolder(dir: string): Promise<void> {
    try {
      const fh = await open(dir, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch {
      // EINVAL/EISDIR on file systems without directory fsync: the data itself is already synced.
    }
  }

  /** Deleting the last backup of a unit removes its now-empty folders, up to (not including) the root. */
  private async removeEmptyParents(dir: string): Promise<void> {
    for (let cur = dir; cur !== this.root && cur.startsWith(this.root + path.sep); cur = path.dirname(cur)) {
      try {
        await rmdir(cur);
      } catch {
        return; // not empty (ENOTEMPTY), already gone, or not ours to remove
      }
    }
  }

  private async walk(dirKey: string, prefix: string, out: StoredObject[]): Promise<void> {
    const dir = dirKey === '' ? this.root : path.join(this.root, ...dirKey.split('/'));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw this.wrap(err, 'list', prefix || '/');
    }
    const subfolders: string[] = [];
    for (const entry of entries) {
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only into folders that can hold keys starting with the prefix.
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) subfolders.push(key);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        out.push({ key });
      }
    }
    await Promise.all(subfolders.map((k) => this.walk(k, prefix, out)));
  }

  /** Stats listed files, a bounded number at a time. A file deleted meanwhile is dropped. */
  private async addDetails(objects: StoredObject[]): Promise<void> {
    const gone = new Set<StoredObject>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < objects.length) {
        const obj = objects[next++] as StoredObject;
        const s = await stat(path.join(this.root, ...obj.key.split('/'))).catch(() => undefined);
        if (s) {
          obj.size = s.size;
          obj.modifiedAt = s.mtime;
        } else gone.add(obj);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    if (gone.size === 0) return;
    // Compact in place: spreading hundreds of thousands of arguments into splice() overflows the stack.
    let kept = 0;
    for (const o of objects) if (!gone.has(o)) objects[kept++] = o;
    objects.length = kept;
  }
}
