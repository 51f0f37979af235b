import { createDecipheriv, timingSafeEqual } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import {
  aadFor,
  attempt,
  CHECK_SIZE,
  CHUNK_SIZE,
  CodecError,
  deriveKeys,
  FINAL_FLAG,
  HEADER_SIZE,
  MAGIC,
  MAX_LOG2_N,
  MIN_LOG2_N,
  nonceFor,
  PREFIX_SIZE,
  SALT_SIZE,
  subjectName,
  subjectPrefix,
  TAG_SIZE,
  VERSION,
  type CodecSubject,
  type DerivedKeys,
} from './format.js';

type State = 'header' | 'length' | 'body' | 'done';

/**
 * Decrypts the `aes-256-gcm-chunked/1` format (format.ts). A chunk's plaintext is pushed only
 * once its GCM tag verified, so nothing unauthenticated ever leaves this stream; memory is one
 * chunk (≤ 1 MiB + 16) plus what is queued. Errors are CodecErrors with the message the user
 * reads: wrong key, truncated, tampered with or corrupt (chunk N).
 */
export class DecryptStream extends Transform {
  private readonly passphrase: string;
  private readonly subject?: CodecSubject;
  private queue: Buffer[] = [];
  private queued = 0;
  /** Bytes of the artifact consumed so far (for offsets in messages). */
  private offset = 0;
  private state: State = 'header';
  private keys?: DerivedKeys;
  private prefix = Buffer.alloc(0);
  private index = 0;
  private length = 0;
  private final = false;
  private chunkOffset = 0;

  constructor(passphrase: string, subject?: CodecSubject) {
    super();
    this.passphrase = passphrase;
    this.subject = subject;
  }

  private fail(problem: 'wrong_key' | 'truncated' | 'corrupt' | 'unsupported', detail: string): CodecError {
    const p = subjectPrefix(this.subject);
    const name = subjectName(this.subject);
    switch (problem) {
      case 'wrong_key':
        return new CodecError(problem, `${p}wrong encryption key for ${name}`);
      case 'truncated':
        return new CodecError(problem, `${p}${name} is truncated: ${detail}`);
      case 'unsupported':
        return new CodecError(problem, `${p}${name}: ${detail}`);
      default:
        return new CodecError(problem, `${p}${name} was tampered with or is corrupt (${detail})`);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (chunk.length) {
      this.queue.push(chunk);
      this.queued += chunk.length;
    }
    this.run().then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  override _flush(cb: TransformCallback): void {
    this.run().then(
      () => {
        if (this.state === 'done') return cb();
        if (this.state === 'header') return cb(this.fail('truncated', `it ends inside its ${HEADER_SIZE}-byte header (${this.offset + this.queued} bytes)`));
        const where =
          this.state === 'length' && this.queued === 0
            ? this.index === 0
              ? 'it ends after its header, before the first chunk'
              : `it ends after chunk ${this.index - 1}, without the final chunk`
            : `it ends inside chunk ${this.index}`;
        cb(this.fail('truncated', `${where} (${this.offset + this.queued} bytes)`));
      },
      (err: Error) => cb(err),
    );
  }

  /** Takes exactly n queued bytes (n ≤ queued). */
  private takeBytes(n: number): Buffer {
    this.queued -= n;
    this.offset += n;
    const first = this.queue[0]!;
    if (first.length >= n) {
      if (first.length === n) this.queue.shift();
      else this.queue[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const b = this.queue[0]!;
      const k = Math.min(b.length, n - off);
      b.copy(out, off, 0, k);
      if (k === b.length) this.queue.shift();
      else this.queue[0] = b.subarray(k);
      off += k;
    }
    return out;
  }

  /** Consumes whatever complete pieces are queued. */
  private async run(): Promise<void> {
    for (;;) {
      if (this.state === 'header') {
        if (this.queued >= MAGIC.length && this.queued < HEADER_SIZE) {
          const head = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
          if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw this.notEncrypted();
        }
        if (this.queued < HEADER_SIZE) return;
        await this.readHeader(this.takeBytes(HEADER_SIZE));
        this.state = 'length';
      } else if (this.state === 'length') {
        if (this.queued < 4) return;
        this.chunkOffset = this.offset;
        const word = this.takeBytes(4).readUInt32BE(0);
        this.final = word >= FINAL_FLAG;
        this.length = word - (this.final ? FINAL_FLAG : 0);
        if (this.length > CHUNK_SIZE) throw this.fail('corrupt', `chunk ${this.index} at byte ${this.chunkOffset} claims ${this.length} bytes`);
        this.state = 'body';
      } else if (this.state === 'body') {
        if (this.queued < this.length + TAG_SIZE) return;
        const body = this.takeBytes(this.length + TAG_SIZE);
        const err = attempt(() => this.open(body));
        if (err) throw err;
        this.index += 1;
        this.state = this.final ? 'done' : 'length';
      } else {
        if (this.queued > 0) throw this.fail('corrupt', `${this.queued} unexpected bytes after the final chunk ${this.index - 1}`);
        return;
      }
    }
  }

  private notEncrypted(): CodecError {
    return this.fail('corrupt', 'it does not start with the bkp encryption header "BKPENC1"');
  }

  private async readHeader(h: Buffer): Promise<void> {
    if (!h.subarray(0, MAGIC.length).equals(MAGIC)) throw this.notEncrypted();
    const version = h[8]!;
    if (version !== VERSION) throw this.fail('unsupported', `encryption format version ${version} is not supported by this bkp (it reads version ${VERSION}); upgrade bkp`);
    const log2N = h[9]!;
    if (log2N < MIN_LOG2_N || log2N > MAX_LOG2_N) throw this.fail('corrupt', `key-derivation cost 2^${log2N} in the header is out of range`);
    const salt = h.subarray(10, 10 + SALT_SIZE);
    this.prefix = Buffer.from(h.subarray(26, 26 + PREFIX_SIZE));
    const check = h.subarray(34, 34 + CHECK_SIZE);
    const keys = await deriveKeys(this.passphrase, Buffer.from(salt), log2N);
    if (!timingSafeEqual(keys.check, check)) throw this.fail('wrong_key', '');
    this.keys = keys;
  }

  private open(body: Buffer): void {
    const ct = body.subarray(0, this.length);
    const tag = body.subarray(this.length);
    const decipher = createDecipheriv('aes-256-gcm', this.keys!.data, nonceFor(this.prefix, this.index), { authTagLength: TAG_SIZE });
    decipher.setAAD(aadFor(this.index, this.final));
    decipher.setAuthTag(tag);
    const plain = decipher.update(ct);
    try {
      decipher.final();
    } catch {
      throw this.fail('corrupt', `chunk ${this.index} at byte ${this.chunkOffset}`);
    }
    if (plain.length) this.push(plain);
  }
}

export function decryptStream(passphrase: string, subject?: CodecSubject): Transform {
  return new DecryptStream(passphrase, subject);
}
