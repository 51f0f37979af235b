import SftpClient from 'ssh2-sftp-client';
import type { ConnectConfig, FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02), as ssh2 puts them in `err.code`. */
export const SFTP_STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** The SFTP status code of a server reply, when `err` is one. */
export function sftpStatus(err: unknown): number | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'number') return err.code;
  return undefined;
}

/** The connection dropped (server gone, network down, keepalive timeout) while a request was pending. */
export class ConnectionLostError extends Error {
  constructor(reason: string) {
    super(`connection lost (${reason})`);
    this.name = 'ConnectionLostError';
  }
}

/** A server without an OpenSSH extension (posix-rename, hardlink, fsync): the caller falls back. */
export class UnsupportedExtensionError extends Error {
  constructor(ext: string) {
    super(`the server does not support ${ext}`);
    this.name = 'UnsupportedExtensionError';
  }
}

const noop = (): void => undefined;

/**
 * One SSH connection with its SFTP channel (opened through ssh2-sftp-client), and promise
 * wrappers around the raw SFTP requests. Every request fails fast once the connection is gone:
 * ssh2 silently drops requests written to a closed channel, so without this guard a caller could
 * wait forever.
 */
export class SftpConnection {
  private lost?: ConnectionLostError;
  private readonly pending = new Set<(err: Error) => void>();
  private ending = false;

  private constructor(
    private readonly client: SftpClient,
    private readonly sftp: SFTPWrapper,
  ) {
    let lastError: Error | undefined;
    const onDown = (what: string) => () => {
      if (this.lost) return;
      this.lost = new ConnectionLostError(lastError ? `${what}: ${lastError.message}` : this.ending ? 'closed by bkp' : `${what} by the server`);
      for (const fail of [...this.pending]) fail(this.lost);
      this.pending.clear();
    };
    client.on('error', (err: Error) => {
      lastError ??= err;
    });
    client.on('end', onDown('connection ended'));
    client.on('close', onDown('connection closed'));
    sftp.on('error', (err: Error) => {
      lastError ??= err;
    });
    sftp.on('close', onDown('SFTP channel closed'));
  }

  /**
   * Connects and opens the SFTP subsystem. On failure, rejects with ssh2's own error (its `level`
   * and `code` say what failed), not ssh2-sftp-client's reworded copy.
   */
  static async open(config: ConnectConfig, label: string): Promise<SftpConnection> {
    // No-op global callbacks: ssh2-sftp-client's defaults print to the console.
    const client = new SftpClient(label, { error: noop, end: noop, close: noop });
    let firstError: Error | undefined;
    client.on('error', (err: Error) => {
      firstError ??= err;
    });
    try {
      const sftp = await client.connect(config);
      return new SftpConnection(client, sftp);
    } catch (err) {
      await client.end().catch(noop);
      throw firstError ?? err;
    }
  }

  get isLost(): boolean {
    return this.lost !== undefined;
  }

  /** Ends the connection; pending requests fail with ConnectionLostError. */
  async end(): Promise<void> {
    if (this.lost) return;
    this.ending = true;
    await this.client.end().catch(noop);
  }

  /** Runs one request; rejects at once when the connection is (or goes) down. */
  private call<T>(start: (done: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.pending.add(fail);
      const done = (err: Error | null | undefined, value: T) => {
        this.pending.delete(fail);
        if (err) reject(this.lost ?? (err.message === 'No response from server' ? new ConnectionLostError(err.message) : err));
        else resolve(value);
      };
      try {
        start(done);
      } catch (err) {
        this.pending.delete(fail);
        reject(err);
      }
    });
  }

  open(path: string, flags: 'r' | 'w' | 'wx'): Promise<Buffer> {
    return this.call<Buffer>((done) => this.sftp.open(path, flags, { mode: 0o640 }, (err, handle) => done(err, handle)));
  }

  close(handle: Buffer): Promise<void> {
    return this.call<void>((done) => this.sftp.close(handle, (err) => done(err, undefined)));
  }

  write(handle: Buffer, data: Buffer, position: number): Promise<void> {
    return this.call<void>((done) => this.sftp.write(handle, data, 0, data.length, position, (err) => done(err, undefined)));
  }

  /** Reads up to `length` bytes at `position`; 0 at the end of the file. */
  read(handle: Buffer, length: number, position: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    return this.call<Buffer>((done) => this.sftp.read(handle, buf, 0, length, position, (err, bytesRead) => done(err, buf.subarray(0, err ? 0 : bytesRead))));
  }

  /** fsync@openssh.com: the data is on the server's disk before the rename makes it visible. */
  fsync(handle: Buffer): Promise<void> {
    return this.extension('fsync@openssh.com', (done) => this.sftp.ext_openssh_fsync(handle, (err) => done(err, undefined)));
  }

  stat(path: string): Promise<Stats> {
    return this.call<Stats>((done) => this.sftp.stat(path, (err, stats) => done(err, stats)));
  }

  readdir(path: string): Promise<FileEntryWithStats[]> {
    return this.call<FileEntryWithStats[]>((done) => this.sftp.readdir(path, (err, list) => done(err, list)));
  }

  mkdir(path: string): Promise<void> {
    return this.call<void>((done) => this.sftp.mkdir(path, { mode: 0o750 }, (err) => done(err, undefined)));
  }

  rmdir(path: string): Promise<void> {
    return this.call<void>((done) => this.sftp.rmdir(path, (err) => done(err, undefined)));
  }

  unlink(path: string): Promise<void> {
    return this.call<void>((done) => this.sftp.unlink(path, (err) => done(err, undefined)));
  }

  /** Plain SFTP v3 rename: fails when `to` exists. */
  rename(from: string, to: string): Promise<void> {
    return this.call<void>((done) => this.sftp.rename(from, to, (err) => done(err, undefined)));
  }

  /** posix-rename@openssh.com: replaces `to` atomically. */
  posixRename(from: string, to: string): Promise<void> {
    return this.extension('posix-rename@openssh.com', (done) => this.sftp.ext_openssh_rename(from, to, (err) => done(err, undefined)));
  }

  /** hardlink@openssh.com: link(2), which fails when `to` exists. */
  hardlink(from: string, to: string): Promise<void> {
    return this.extension('hardlink@openssh.com', (done) => this.sftp.ext_openssh_hardlink(from, to, (err) => done(err, undefined)));
  }

  /** The absolute form of a path on the server (`.` is the login folder). */
  realpath(path: string): Promise<string> {
    return this.call<string>((done) => this.sftp.realpath(path, (err, abs) => done(err, abs)));
  }

  /** ssh2 throws synchronously when the server did not announce an extension. */
  private extension(name: string, start: (done: (err: Error | null | undefined, value: undefined) => void) => void): Promise<void> {
    return this.call<undefined>((done) => {
      try {
        start(done);
      } catch (err) {
        if (err instanceof Error && /does not support this extended request/.test(err.message)) done(new UnsupportedExtensionError(name), undefined);
        else throw err;
      }
    });
  }
}
