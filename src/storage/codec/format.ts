import { createHmac, scrypt } from 'node:crypto';
import { UserError } from '../../core/diagnostics.js';

/**
 * bkp's encrypted artifact format, `aes-256-gcm-chunked/1` (the manifest's `encryption` value).
 *
 * Header, 50 bytes:
 *   offset  size  field
 *   0       8     magic "BKPENC1\n"
 *   8       1     format version = 1
 *   9       1     log2 of scrypt's N (writers use 15; readers accept 10..17); r = 8, p = 1
 *   10      16    salt, random per artifact
 *   26      8     nonce prefix, random per artifact
 *   34      16    key check: HMAC-SHA256(master, "bkp/1 key check"), first 16 bytes
 *
 * Keys: master = scrypt(passphrase as UTF-8, salt, N, r = 8, p = 1, 32 bytes);
 *   data key = HMAC-SHA256(master, "bkp/1 data key") (32 bytes, the AES-256 key).
 *   The key check lets a reader tell a wrong key ("wrong encryption key") from damaged data
 *   before it decrypts anything. Cost: N = 2^15, r = 8 takes 32 MiB and about 0.1 s of CPU once
 *   per artifact written or read (an offline guess costs the attacker the same).
 *
 * Body: chunks, in order, numbered from 0:
 *   uint32 big-endian  bit 31 = final flag, bits 0..30 = plaintext length n (n ≤ 1 MiB)
 *   n bytes            AES-256-GCM ciphertext
 *   16 bytes           GCM tag
 *   nonce (12 bytes) = nonce prefix (8) ‖ uint32 BE chunk number
 *   AAD (5 bytes)    = uint32 BE chunk number ‖ uint8 final flag (1 or 0)
 * Exactly the last chunk is final; an empty input is one final chunk of length 0. A reader emits
 * a chunk's plaintext only after its tag verified, so it never passes on unauthenticated bytes.
 * Missing final chunk → truncated; chunks swapped, duplicated or altered → the tag of the first
 * misplaced chunk fails (its number is in the nonce and AAD); bytes after the final chunk → corrupt.
 */
export const MAGIC = Buffer.from('BKPENC1\n', 'latin1');
export const VERSION = 1;
export const HEADER_SIZE = 50;
export const SALT_SIZE = 16;
export const PREFIX_SIZE = 8;
export const CHECK_SIZE = 16;
export const TAG_SIZE = 16;
/** Largest plaintext per chunk. */
export const CHUNK_SIZE = 1024 * 1024;
export const FINAL_FLAG = 0x80000000;
export const WRITE_LOG2_N = 15;
export const MIN_LOG2_N = 10;
/** A reader refuses more: a damaged header must not make it allocate gigabytes. */
export const MAX_LOG2_N = 17;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
/** The manifest's `encryption` value for this format. */
export const ENCRYPTION_FORMAT = 'aes-256-gcm-chunked/1';

export interface DerivedKeys {
  data: Buffer;
  check: Buffer;
}

/** scrypt then the two subkeys; asynchronous (libuv's thread pool), so it does not block the event loop. */
export function deriveKeys(passphrase: string, salt: Buffer, log2N: number): Promise<DerivedKeys> {
  const N = 2 ** log2N;
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(passphrase, 'utf8'), salt, 32, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem: 2 * 128 * N * SCRYPT_R + 1024 * 1024 }, (err, master) => {
      if (err) return reject(err);
      resolve({
        data: createHmac('sha256', master).update('bkp/1 data key').digest(),
        check: createHmac('sha256', master).update('bkp/1 key check').digest().subarray(0, CHECK_SIZE),
      });
    });
  });
}

export function nonceFor(prefix: Buffer, index: number): Buffer {
  const iv = Buffer.alloc(PREFIX_SIZE + 4);
  prefix.copy(iv, 0);
  iv.writeUInt32BE(index, PREFIX_SIZE);
  return iv;
}

export function aadFor(index: number, final: boolean): Buffer {
  const aad = Buffer.alloc(5);
  aad.writeUInt32BE(index, 0);
  aad[4] = final ? 1 : 0;
  return aad;
}

/** Why an artifact could not be decoded; the message is the one the user reads. */
export type CodecProblem = 'wrong_key' | 'missing_key' | 'truncated' | 'corrupt' | 'unsupported' | 'tool';

/** Who is being decoded, for messages: `storage X: backup ID …`. */
export interface CodecSubject {
  storage?: string;
  id?: string;
}

export class CodecError extends UserError {
  readonly problem: CodecProblem;
  constructor(problem: CodecProblem, message: string) {
    super(message);
    this.name = 'CodecError';
    this.problem = problem;
  }
}

export function subjectPrefix(s: CodecSubject | undefined): string {
  return s?.storage ? `storage ${s.storage}: ` : '';
}

export function subjectName(s: CodecSubject | undefined): string {
  return s?.id ? `backup ${s.id}` : 'the encrypted artifact';
}

/** Runs `fn`, returning what it threw (for a stream callback) or null. */
export function attempt(fn: () => void): Error | null {
  try {
    fn();
    return null;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
