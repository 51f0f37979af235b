import { createCipheriv, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import {
  aadFor,
  CHUNK_SIZE,
  deriveKeys,
  FINAL_FLAG,
  HEADER_SIZE,
  MAGIC,
  nonceFor,
  PREFIX_SIZE,
  SALT_SIZE,
  VERSION,
  WRITE_LOG2_N,
  attempt,
  type DerivedKeys,
} from './format.js';

/** Largest chunk number: the nonce holds it in 32 bits (4 PiB of plaintext per artifact). */
const MAX_CHUNKS = 2 ** 32;

/**
 * Encrypts a stream into the `aes-256-gcm-chunked/1` format described in format.ts. Holds one
 * 1 MiB plaintext chunk at a time (a full chunk waits until more data or the end shows whether it
 * is the final one), so memory stays constant whatever the size; backpressure is Transform's.
 */
export class EncryptStream extends Transform {
  private readonly passphrase: string;
  private readonly salt = randomBytes(SALT_SIZE);
  private readonly prefix = randomBytes(PREFIX_SIZE);
  private readonly log2N: number;
  private keys?: DerivedKeys;
  private readonly buf = Buffer.allocUnsafe(CHUNK_SIZE);
  private fill = 0;
  private index = 0;

  constructor(passphrase: string, opts: { log2N?: number } = {}) {
    super();
    if (passphrase.length === 0) throw new Error('empty encryption key');
    this.passphrase = passphrase;
    this.log2N = opts.log2N ?? WRITE_LOG2_N;
  }

  /** Derives the key and pushes the header, once. */
  private async start(): Promise<DerivedKeys> {
    if (this.keys) return this.keys;
    const keys = await deriveKeys(this.passphrase, this.salt, this.log2N);
    const header = Buffer.alloc(HEADER_SIZE);
    MAGIC.copy(header, 0);
    header[8] = VERSION;
    header[9] = this.log2N;
    this.salt.copy(header, 10);
    this.prefix.copy(header, 26);
    keys.check.copy(header, 34);
    this.keys = keys;
    this.push(header);
    return keys;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.start().then(
      (keys) => cb(attempt(() => {
        let off = 0;
        while (off < chunk.length) {
          if (this.fill === CHUNK_SIZE) this.seal(keys, false); // more data follows: not the final chunk
          const n = Math.min(CHUNK_SIZE - this.fill, chunk.length - off);
          chunk.copy(this.buf, this.fill, off, off + n);
          this.fill += n;
          off += n;
        }
      })),
      (err: Error) => cb(err),
    );
  }

  override _flush(cb: TransformCallback): void {
    this.start().then(
      (keys) => cb(attempt(() => this.seal(keys, true))),
      (err: Error) => cb(err),
    );
  }

  private seal(keys: DerivedKeys, final: boolean): void {
    if (this.index >= MAX_CHUNKS) throw new Error(`encrypted artifact too large: more than ${MAX_CHUNKS} chunks`);
    const cipher = createCipheriv('aes-256-gcm', keys.data, nonceFor(this.prefix, this.index), { authTagLength: 16 });
    cipher.setAAD(aadFor(this.index, final));
    const head = Buffer.alloc(4);
    head.writeUInt32BE((final ? FINAL_FLAG : 0) + this.fill, 0);
    const body = cipher.update(this.buf.subarray(0, this.fill));
    const rest = cipher.final();
    this.push(head);
    this.push(body);
    if (rest.length) this.push(rest);
    this.push(cipher.getAuthTag());
    this.fill = 0;
    this.index += 1;
  }
}

export function encryptStream(passphrase: string, opts: { log2N?: number } = {}): Transform {
  return new EncryptStream(passphrase, opts);
}
