import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

/**
 * An S3-compatible server for one test file (DESIGN §8): s3rver 3.7 in this process, on
 * 127.0.0.1 on a free port, storing objects in a temp folder, with the bucket `bkp` created.
 *
 * s3rver only knows the access key `S3RVER` (secret `S3RVER`). It checks that the access key
 * exists (an unknown one gets 403 InvalidAccessKeyId) but does not verify SigV4 signatures, so a
 * wrong *secret* is accepted: tests can check "unknown access key", not "wrong secret".
 * It also ignores `If-None-Match` on PUT (so conditional creates are not atomic on it), answers
 * AbortMultipartUpload with 405 and ListMultipartUploads with 501, and needs a shim to paginate
 * listings on OpenSSL 3 (see `routeSingleDesToTripleDes`).
 *
 * Clients must set `forcePathStyle: true` and `requestChecksumCalculation: 'WHEN_REQUIRED'`:
 * s3rver does not understand aws-chunked bodies with checksum trailers and stores them as they
 * come, framing included (a corrupted object).
 */
export interface S3TestServer {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** The bucket created at start: `bkp`. */
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The folder s3rver stores buckets and objects in (removed by `stop`). */
  dir: string;
  stop(): Promise<void>;
}

/** The part of s3rver's API used here (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
  vhostBuckets: boolean;
  resetOnClose: boolean;
}) => S3rverInstance;

const require = createRequire(import.meta.url);

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES (`des`), which OpenSSL 3
 * only has in its legacy provider: every listing of more than 1000 keys fails with
 * "digital envelope routines::unsupported" (HTTP 500). Triple DES with K1 = K2 = K3 *is* single
 * DES and is in the default provider, so `des` calls are routed to it. Only the CommonJS
 * `crypto` object is patched (what s3rver `require`s), only for `des`, which would otherwise
 * throw: nothing else in the process can notice.
 */
function routeSingleDesToTripleDes(): void {
  const crypto = require('node:crypto') as Record<string, unknown> & { __bkpDesShim?: boolean };
  if (crypto.__bkpDesShim) return;
  crypto.__bkpDesShim = true;
  for (const name of ['createCipheriv', 'createDecipheriv']) {
    const original = crypto[name] as AnyFunction;
    crypto[name] = function (this: unknown, algorithm: string, key: Buffer, iv: Buffer | null, ...rest: unknown[]): unknown {
      if (typeof algorithm === 'string' && algorithm.toLowerCase() === 'des' && Buffer.isBuffer(key) && key.length === 8) {
        return original.call(this, 'des-ede3-cbc', Buffer.concat([key, key, key]), iv, ...rest);
      }
      return original.call(this, algorithm, key, iv, ...rest);
    };
  }
}

export async function startS3(): Promise<S3TestServer> {
  routeSingleDesToTripleDes();
  const S3rver = require('s3rver') as S3rverConstructor;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bkp-s3rver-'));
  const bucket = 'bkp';
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0, // the OS picks a free port
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket }],
    vhostBuckets: false,
    resetOnClose: false,
  });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
