import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { CodecError } from './format.js';

/** Compression bkp applies at the storage level (the manifest's `compression`). */
export type StorageCompression = 'gzip' | 'zstd' | 'none';

export interface CompressOptions {
  /** gzip 1..9 (default 6), zstd 1..19 (default 3). */
  level?: number;
  /** The zstd program (default `zstd`, found on PATH). */
  zstdPath?: string;
}

/** The last bytes of a tool's stderr kept for its error message. */
const STDERR_LIMIT = 4096;

/**
 * A child process as a Transform: what is written goes to its stdin, its stdout comes out, with
 * backpressure both ways (a write waits for stdin to drain; stdout pauses while our readable
 * side is full). A non-zero exit, or a missing program, fails the stream.
 */
export class ChildTransform extends Transform {
  private readonly program: string;
  private readonly args: string[];
  private readonly describe: (detail: string) => string;
  private readonly missing: () => Error;
  /** Started on the first write (or the end), so a stream built and never used leaves no process behind. */
  private child?: ChildProcessByStdio<Writable, Readable, Readable>;
  private childClosed?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';
  private exited = false;

  constructor(program: string, args: string[], describe: (detail: string) => string, missing: () => Error) {
    super();
    this.program = program;
    this.args = args;
    this.describe = describe;
    this.missing = missing;
  }

  private start(): { child: ChildProcessByStdio<Writable, Readable, Readable>; closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
    if (this.child && this.childClosed) return { child: this.child, closed: this.childClosed };
    const child = spawn(this.program, this.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.exited = true;
      this.destroy(err.code === 'ENOENT' ? this.missing() : new CodecError('tool', this.describe(err.message)));
    });
    child.stdin.on('error', () => undefined); // EPIPE when the tool exits early: its exit status tells why
    child.stdout.on('data', (d: Buffer) => {
      if (!this.push(d)) child.stdout.pause();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-STDERR_LIMIT)));
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('close', (code, signal) => {
        this.exited = true;
        resolve({ code, signal });
      });
    });
    this.childClosed = closed;
    // A failure before the end (corrupt input makes `zstd -d` exit early) fails the stream now,
    // not at flush: a writer waiting for stdin to drain would otherwise wait forever.
    void closed.then((r) => {
      if (!this.destroyed && (r.code !== 0 || r.signal)) this.destroy(this.failure(r));
    });
    return { child, closed };
  }

  private failure(r: { code: number | null; signal: NodeJS.Signals | null }): CodecError {
    const how = r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
    const err = this.stderr.trim().split('\n').slice(-3).join(' ');
    return new CodecError('tool', this.describe(`${how}${err ? `: ${err}` : ''}`));
  }

  override _read(size: number): void {
    this.child?.stdout.resume();
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const { child } = this.start();
    if (child.stdin.write(chunk)) cb();
    else child.stdin.once('drain', () => cb());
  }

  override _flush(cb: TransformCallback): void {
    const { child, closed } = this.start();
    child.stdin.end();
    closed.then(
      (r) => cb(r.code === 0 && !r.signal ? null : this.failure(r)),
      (err: Error) => cb(err),
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.child && !this.exited) this.child.kill('SIGTERM');
    this.child?.stdout.destroy();
    cb(err);
  }
}

function zstdMissing(program: string): () => Error {
  return () => new CodecError('tool', `compression zstd needs the zstd program, which was not found (${program}): install zstd (apt-get install zstd, brew install zstd…) or use compression: gzip`);
}

/** A compressing Transform, or undefined for `none`. */
export function compressStream(compression: StorageCompression, opts: CompressOptions = {}): Transform | undefined {
  switch (compression) {
    case 'none':
      return undefined;
    case 'gzip':
      return createGzip({ level: opts.level ?? 6, chunkSize: 64 * 1024 });
    case 'zstd': {
      const program = opts.zstdPath ?? 'zstd';
      const level = opts.level ?? 3;
      return new ChildTransform(program, ['-T0', '-q', '-c', `-${level}`, '-'], (d) => `zstd compression failed (${d})`, zstdMissing(program));
    }
  }
}

/**
 * A decompressing Transform for what the manifest's `compression` says, or undefined for `none`.
 * `lz4` is an engine-level method (pg_dump): bkp never applies it to a storage.
 */
export function decompressStream(compression: StorageCompression | 'lz4', opts: CompressOptions = {}): Transform | undefined {
  switch (compression) {
    case 'none':
      return undefined;
    case 'gzip':
      return createGunzip({ chunkSize: 64 * 1024 });
    case 'zstd': {
      const program = opts.zstdPath ?? 'zstd';
      return new ChildTransform(program, ['-d', '-q', '-c', '-'], (d) => `zstd decompression failed (${d})`, zstdMissing(program));
    }
    default:
      throw new CodecError('unsupported', `storage-level compression "${compression}" is not one bkp writes (gzip, zstd, none)`);
  }
}
