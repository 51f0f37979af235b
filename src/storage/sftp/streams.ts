import { Readable, Writable } from 'node:stream';
import { type SftpConnection, UnsupportedExtensionError } from './connection.js';

const noop = (): void => undefined;

/** Bytes of WRITE requests the sink keeps in flight: enough to fill a long link, small enough to be constant. */
const WRITE_WINDOW = 4 * 1024 * 1024;
/** Small chunks are merged into requests of up to this size (OpenSSH accepts 256 KiB per request). */
const WRITE_BATCH = 128 * 1024;
const READ_CHUNK = 128 * 1024;
const READ_AHEAD = 16;

/**
 * A Writable over an open SFTP file handle that pipelines WRITE requests (up to WRITE_WINDOW bytes
 * in flight, instead of one round trip per chunk) and gives backpressure past that. On finish it
 * fsyncs (fsync@openssh.com, when the server has it) and closes the handle; on destroy it closes
 * the handle too. `handleDone` settles once the handle is closed (or the connection is gone).
 */
export class SftpFileSink extends Writable {
  private position = 0;
  private inFlight = 0;
  private failure: Error | undefined;
  private blocked: ((err?: Error | null) => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private handleClosed = false;
  private resolveClosed: () => void = noop;
  /** Settles (never rejects) once the handle is closed or cannot be anymore. */
  readonly handleDone: Promise<void>;

  constructor(
    private readonly conn: SftpConnection,
    private readonly handle: Buffer,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.handleDone = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.send(chunk);
    this.afterSend(callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    let batch: Buffer[] = [];
    let batchSize = 0;
    const flush = () => {
      if (batch.length === 0) return;
      this.send(batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, batchSize));
      batch = [];
      batchSize = 0;
    };
    for (const { chunk } of chunks) {
      if (batchSize + chunk.length > WRITE_BATCH) flush();
      batch.push(chunk);
      batchSize += chunk.length;
    }
    flush();
    this.afterSend(callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.finish().then(() => callback(), (err: Error) => callback(err));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // The server handles requests in order: closing now still lets in-flight writes land first.
    this.closeHandle().then(() => callback(err), () => callback(err));
  }

  private send(data: Buffer): void {
    if (this.failure) return;
    const at = this.position;
    this.position += data.length;
    this.inFlight += data.length;
    this.conn.write(this.handle, data, at).then(noop, (err: Error) => {
      this.failure ??= err;
    }).finally(() => {
      this.inFlight -= data.length;
      this.wake();
    });
  }

  private afterSend(callback: (err?: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    if (this.inFlight < WRITE_WINDOW) return callback();
    this.blocked = callback;
  }

  private wake(): void {
    if (this.blocked && (this.failure || this.inFlight < WRITE_WINDOW)) {
      const cb = this.blocked;
      this.blocked = undefined;
      cb(this.failure);
    }
    if (this.inFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The first failed WRITE (or fsync/close), if any: the storage failed, not the source. */
  get writeError(): Error | undefined {
    return this.failure;
  }

  private async finish(): Promise<void> {
    await this.idle();
    if (this.failure) throw this.failure;
    try {
      await this.conn.fsync(this.handle).catch((err: unknown) => {
        if (!(err instanceof UnsupportedExtensionError)) throw err;
      });
      await this.closeHandle(true);
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    }
  }

  private async closeHandle(strict = false): Promise<void> {
    if (this.handleClosed) return;
    this.handleClosed = true;
    try {
      await this.conn.close(this.handle);
    } catch (err) {
      // A failing close after a successful write can mean lost data (NFS, quotas): report it.
      if (strict) throw err;
    } finally {
      this.resolveClosed();
    }
  }
}

interface ReadRequest {
  position: number;
  length: number;
  data: Promise<Buffer>;
}

/**
 * A Readable over an open SFTP file handle with read-ahead: READ_AHEAD requests of READ_CHUNK
 * bytes in flight, delivered in order (a short read is completed by a new request for the rest).
 * Closes the handle at the end of the file and on destroy.
 */
export class SftpFileSource extends Readable {
  private readonly queue: ReadRequest[] = [];
  private next = 0;
  private eof = false;
  private pumping = false;
  private handleClosed = false;

  constructor(
    private readonly conn: SftpConnection,
    private readonly handle: Buffer,
    private readonly mapError: (err: unknown) => Error = (err) => (err instanceof Error ? err : new Error(String(err))),
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _read(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.pump().catch((err: unknown) => this.destroy(this.mapError(err)));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.closeHandle().then(() => callback(err), () => callback(err));
  }

  private request(position: number, length: number): ReadRequest {
    const data = this.conn.read(this.handle, length, position);
    data.catch(noop); // awaited in order later; an early failure must not be "unhandled"
    return { position, length, data };
  }

  private fill(): void {
    while (!this.eof && this.queue.length < READ_AHEAD) {
      this.queue.push(this.request(this.next, READ_CHUNK));
      this.next += READ_CHUNK;
    }
  }

  private async pump(): Promise<void> {
    for (;;) {
      this.fill();
      const head = this.queue.shift();
      if (!head) return;
      const data = await head.data;
      if (this.destroyed) return;
      if (data.length === 0) {
        // End of file: later requests (past the end) answer EOF too; drop them.
        this.eof = true;
        this.queue.length = 0;
        await this.closeHandle();
        this.push(null);
        return;
      }
      if (data.length < head.length) this.queue.unshift(this.request(head.position + data.length, head.length - data.length));
      if (!this.push(data)) {
        this.pumping = false;
        return;
      }
    }
  }

  private async closeHandle(): Promise<void> {
    if (this.handleClosed) return;
    this.handleClosed = true;
    await this.conn.close(this.handle).catch(noop);
  }
}
