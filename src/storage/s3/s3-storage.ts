import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { UserError } from '../../core/diagnostics.js';
import { AlreadyExistsError, type OnProgress, type Storage, type StoredObject } from '../types.js';
import { describeS3Error, errorMessage, isConditionalConflict, isNotFound, isNotImplemented, isPreconditionFailed } from './errors.js';
import { parseS3Options, resolveS3Options, type ResolvedS3Options, type S3Options } from './options.js';
import { assertValidKey } from '../keys.js';

export type { S3Options } from './options.js';
export { parseS3Options } from './options.js';

/**
 * Multipart part size and parallel parts. The uploader holds at most about
 * (QUEUE_SIZE + 1) × PART_SIZE bytes (≈ 48 MiB) whatever the artifact size; S3 allows 10,000
 * parts, so one artifact can be up to 10,000 × 16 MiB = 156 GiB.
 */
const PART_SIZE = 16 * 1024 * 1024;
const QUEUE_SIZE = 2;
const MAX_PARTS = 10_000;
const MAX_OBJECT_SIZE = PART_SIZE * MAX_PARTS;

/** How locks are taken on this server; see `putExclusive`. */
type LockMode = 'atomic' | 'best-effort';

/** Metadata key that tells, in best-effort mode, whose lock write landed last. */
const LOCK_NONCE = 'bkp-lock-nonce';

export interface S3StorageDeps {
  /** Where the one-time warnings go (a server without conditional writes). Default: stderr. */
  warn?: (message: string) => void;
}

/** An incomplete multipart upload: what a killed `bkp` leaves behind in the bucket. */
export interface IncompleteUpload {
  /** Key relative to the storage prefix. */
  key: string;
  uploadId: string;
  initiated?: Date;
}

/**
 * An S3 bucket (AWS, or an S3-compatible server with `endpoint`): DESIGN §6.
 *
 * Keys are `prefix + key`. Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws files, SSO, web identity, container and
 * instance roles): never from the policy file.
 *
 * Atomic `put` without a rename: an artifact is streamed as a multipart upload straight to its
 * final key. S3 makes an object visible only at CompleteMultipartUpload, so an upload that fails
 * leaves no object (and an existing object at that key stays whole until the new one replaces
 * it); bkp aborts the upload on any error. Nothing is ever listed under `<key>.partial-*`
 * here. A process that is killed mid-upload cannot abort: its parts stay in the bucket, invisible
 * to `list`, billed, until removed; set a bucket lifecycle rule `AbortIncompleteMultipartUpload`
 * (e.g. after 1 day), or look at them with `listIncompleteUploads()` and
 * `abortIncompleteUpload()`.
 */
export class S3Storage implements Storage {
  readonly name: string;
  readonly options: ResolvedS3Options;
  private readonly client: S3Client;
  private readonly warn: (message: string) => void;
  private lockMode?: Promise<LockMode>;
  private warnedBestEffort = false;

  constructor(name: string, options: S3Options, deps: S3StorageDeps = {}) {
    this.name = name;
    this.options = resolveS3Options(name, options);
    this.warn = deps.warn ?? ((message) => void process.stderr.write(`warning: ${message}\n`));
    // The SDK prints a "NodeVersionSupportWarning" on Node < 22 at the first request of every run,
    // about SDK versions bkp does not use (it pins its SDK). Keep it off unless the user chose.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: this.options.region,
      ...(this.options.endpoint !== undefined ? { endpoint: this.options.endpoint } : {}),
      forcePathStyle: this.options.forcePathStyle,
      // Since SDK 3.729 the default (WHEN_SUPPORTED) sends every streamed PutObject/UploadPart
      // as `Content-Encoding: aws-chunked` with a CRC32 trailer. S3-compatible servers that do
      // not decode aws-chunked (s3rver, older MinIO and Ceph, some appliances) store the chunk
      // framing as part of the object: a silently corrupted backup. Checksums only when an
      // operation requires them; integrity is bkp's own end-to-end sha256 (manifest, verify).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      // Likewise, do not ask for (and validate) response checksums these servers do not send;
      // multipart objects carry composite checksums the SDK cannot validate anyway.
      responseChecksumValidation: 'WHEN_REQUIRED',
      // On AWS, a bucket in another region than `region` still works (the SDK follows the 301).
      followRegionRedirects: this.options.endpoint === undefined,
      maxAttempts: 3,
      // Nothing listening, or a host that drops packets: a clear error in seconds (3 attempts of
      // at most 10 s to connect). A connection that goes silent is dropped after a minute.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
    });
  }

  /** From the policy's unparsed `{ type: 's3', name, options }`. */
  static fromConfig(config: { name: string; options: Record<string, unknown> }, deps: S3StorageDeps = {}): S3Storage {
    return new S3Storage(config.name, parseS3Options(config.name, config.options), deps);
  }

  describe(): string {
    const where = `s3://${this.options.bucket}/${this.options.prefix}`;
    return this.options.endpoint ? `${where} at ${this.options.endpoint}` : where;
  }

  /** Closes the client's keep-alive connections; the next call opens new ones. */
  close(): void {
    this.client.destroy();
  }

  /**
   * Lists a key under the prefix (bucket exists, credentials work, listing is allowed), then
   * writes, overwrites conditionally and deletes a probe object (writing and deleting are
   * allowed; whether the server honours If-None-Match, remembered for `putExclusive`).
   */
  async checkWritable(): Promise<void> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.options.prefix, MaxKeys: 1 }));
    } catch (err) {
      throw this.wrap(err, `checking bucket "${this.options.bucket}"`, { bucketCheck: true });
    }
    await this.conditionalWrites();
  }

  async list(prefix: string, _opts: { detailed?: boolean } = {}): Promise<StoredObject[]> {
    if (prefix !== '') this.checkKey(prefix.replace(/\/+$/, ''), { prefix: true });
    const out: StoredObject[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.options.prefix + prefix, ...(token ? { ContinuationToken: token } : {}) }),
        );
      } catch (err) {
        throw this.wrap(err, `listing ${prefix || '/'}`);
      }
      for (const o of page.Contents ?? []) {
        if (!o.Key || !o.Key.startsWith(this.options.prefix)) continue;
        const key = o.Key.slice(this.options.prefix.length);
        // `folder/` markers made by consoles and other tools are not objects of ours.
        if (key === '' || key.endsWith('/')) continue;
        const obj: StoredObject = { key };
        if (typeof o.Size === 'number') obj.size = o.Size;
        if (o.LastModified) obj.modifiedAt = o.LastModified;
        out.push(obj);
      }
      const next = page.IsTruncated ? page.NextContinuationToken : undefined;
      // A server that repeats a token (or says "truncated" without one) must not loop forever.
      if (next !== undefined && seen.has(next)) throw new Error(`${this.where()}: the server returned the same continuation token twice while listing ${prefix || '/'}`);
      if (next !== undefined) seen.add(next);
      token = next;
    } while (token);
    return out;
  }

  /**
   * Streams `body` to `key` as a multipart upload (see the class comment for why that is atomic).
   * Bodies under one part go up as one PutObject. `onProgress` counts the bytes handed to the
   * uploader, which runs at most QUEUE_SIZE parts ahead of the network.
   */
  async put(key: string, body: Readable, onProgress?: OnProgress): Promise<{ size: number }> {
    const fullKey = this.fullKey(key);
    let size = 0;
    // Errors thrown while reading `body` are the source's (the engine failed): rethrown as they
    // are, so the user sees the engine's message.
    let sourceError: { error: unknown } | undefined;
    let tooLarge = false;
    const limitMessage = `${this.where()}: ${key} is larger than ${MAX_OBJECT_SIZE / 1024 ** 3} GiB, the most one S3 multipart upload of ${MAX_PARTS} parts of ${PART_SIZE / 1024 ** 2} MiB can hold`;
    async function* counting(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of body as AsyncIterable<Buffer | string>) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          size += buf.length;
          if (size > MAX_OBJECT_SIZE) {
            tooLarge = true;
            throw new UserError(limitMessage);
          }
          onProgress?.(size);
          yield buf;
        }
      } catch (err) {
        if (!tooLarge) sourceError = { error: err };
        throw err;
      }
    }
    const counted = Readable.from(counting(), { objectMode: false, highWaterMark: 1024 * 1024 });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.options.bucket, Key: fullKey, Body: counted },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      // bkp aborts the upload itself, so that a failing abort does not hide the real error.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      // Stop reading the source (an engine blocked on a full pipe is released).
      counted.destroy();
      if (!body.destroyed) body.destroy();
      await this.abortUpload(fullKey, key, upload.uploadId);
      if (sourceError) throw sourceError.error;
      if (tooLarge) throw new UserError(limitMessage);
      throw this.wrap(err, `writing ${key}`);
    }
    return { size };
  }

  async putText(key: string, text: string): Promise<void> {
    const fullKey = this.fullKey(key);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: fullKey, Body: Buffer.from(text, 'utf8'), ...contentType(key) }));
    } catch (err) {
      throw this.wrap(err, `writing ${key}`);
    }
  }

  /**
   * Creates `key` only if it does not exist. On a server that honours conditional writes
   * (AWS S3 since 2024-08, MinIO, recent Ceph…) this is `PutObject` with `If-None-Match: *`,
   * atomic: 412 PreconditionFailed means the lock is held. Whether the server honours it is
   * found out once per storage by a probe (see `checkWritable`): a server that ignores the header
   * (s3rver does: the second conditional PUT silently overwrites) or answers 501 NotImplemented
   * gets a best-effort lock instead, with one warning: HEAD, then PUT with a random nonce in the
   * metadata, then HEAD again to see that our write is the one that stayed. Two runs starting
   * within the same few milliseconds could both believe they hold it.
   */
  async putExclusive(key: string, text: string): Promise<void> {
    const fullKey = this.fullKey(key);
    const mode = await this.conditionalWrites();
    if (mode === 'best-effort') return this.putExclusiveBestEffort(key, fullKey, text);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: fullKey, Body: Buffer.from(text, 'utf8'), IfNoneMatch: '*', ...contentType(key) }));
        return;
      } catch (err) {
        if (isPreconditionFailed(err)) throw new AlreadyExistsError(key);
        if (isConditionalConflict(err)) {
          // AWS: another conditional write to this key is in flight. Retry; if it persists, the
          // other writer is taking the lock.
          if (attempt < 3) {
            await sleep(50 * (attempt + 1) + Math.floor(Math.random() * 50));
            continue;
          }
          throw new AlreadyExistsError(key);
        }
        if (isNotImplemented(err)) {
          this.lockMode = Promise.resolve('best-effort');
          this.warnBestEffort();
          return this.putExclusiveBestEffort(key, fullKey, text);
        }
        throw this.wrap(err, `writing ${key}`);
      }
    }
  }

  async get(key: string): Promise<Readable> {
    const fullKey = this.fullKey(key);
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: fullKey }));
    } catch (err) {
      throw this.readError(err, key);
    }
    const body = res.Body;
    if (body instanceof Readable) return body;
    if (body === undefined) return Readable.from([]);
    throw new Error(`${this.where()}: the S3 client returned a body that is not a Node stream while reading ${key}`);
  }

  async getText(key: string): Promise<string> {
    const fullKey = this.fullKey(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: fullKey }));
      return res.Body ? await res.Body.transformToString('utf8') : '';
    } catch (err) {
      throw this.readError(err, key);
    }
  }

  /** S3 answers 204 for a missing key; a server answering NoSuchKey is fine too. */
  async delete(key: string): Promise<void> {
    const fullKey = this.fullKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: fullKey }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.wrap(err, `deleting ${key}`);
    }
  }

  /**
   * Multipart uploads under the prefix that were never completed nor aborted (a killed bkp):
   * invisible to `list`, but stored and billed. Empty when the server cannot list them (s3rver
   * answers NotImplemented).
   */
  async listIncompleteUploads(): Promise<IncompleteUpload[]> {
    const out: IncompleteUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.options.bucket,
            Prefix: this.options.prefix,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        );
      } catch (err) {
        if (isNotImplemented(err)) return out;
        throw this.wrap(err, 'listing incomplete multipart uploads');
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Key.startsWith(this.options.prefix)) continue;
        const item: IncompleteUpload = { key: u.Key.slice(this.options.prefix.length), uploadId: u.UploadId };
        if (u.Initiated) item.initiated = u.Initiated;
        out.push(item);
      }
      if (!page.IsTruncated || (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker)) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async abortIncompleteUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.fullKey(key), UploadId: uploadId }));
    } catch (err) {
      if (isNotFound(err) || (err instanceof Error && err.name === 'NoSuchUpload')) return;
      throw this.wrap(err, `aborting the multipart upload of ${key}`);
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  private where(): string {
    return `storage "${this.name}" (${this.describe()})`;
  }

  private server(): string {
    return this.options.endpoint ?? `AWS S3 (region ${this.options.region})`;
  }

  private wrap(err: unknown, doing: string, opts: { bucketCheck?: boolean } = {}): Error {
    if (err instanceof AlreadyExistsError) return err;
    return describeS3Error(err, { where: this.where(), bucket: this.options.bucket, server: this.server(), doing, bucketCheck: opts.bucketCheck ?? false });
  }

  private readError(err: unknown, key: string): Error {
    if (isNotFound(err)) return new UserError(`${this.where()}: no object ${key}`);
    return this.wrap(err, `reading ${key}`);
  }

  private checkKey(key: string, { prefix = false } = {}): void {
    assertValidKey(key, this.where(), { prefix });
  }

  private fullKey(key: string): string {
    this.checkKey(key);
    return this.options.prefix + key;
  }

  private async abortUpload(fullKey: string, key: string, uploadId: string | undefined): Promise<void> {
    if (!uploadId) return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: fullKey, UploadId: uploadId }));
    } catch (err) {
      this.warn(
        `${this.where()}: could not abort the incomplete multipart upload of ${key} (upload id ${uploadId}): ${errorMessage(err)}; ` +
          'its parts stay in the bucket (not as an object) until a lifecycle rule AbortIncompleteMultipartUpload removes them',
      );
    }
  }

  /** Whether this server honours If-None-Match on PUT: probed once, remembered. */
  private conditionalWrites(): Promise<LockMode> {
    this.lockMode ??= this.probeConditionalWrites().catch((err: unknown) => {
      this.lockMode = undefined;
      throw err;
    });
    return this.lockMode;
  }

  /**
   * Writes a fresh probe object with If-None-Match twice: a server that honours the header
   * refuses the second write with 412; one that ignores it overwrites silently. Then deletes it.
   */
  private async probeConditionalWrites(): Promise<LockMode> {
    const probe = `.bkp-probe-${randomBytes(6).toString('hex')}`;
    const input: PutObjectCommandInput = { Bucket: this.options.bucket, Key: this.fullKey(probe), Body: Buffer.from('bkp write probe\n'), IfNoneMatch: '*' };
    let mode: LockMode | undefined;
    try {
      try {
        await this.client.send(new PutObjectCommand(input));
      } catch (err) {
        if (!isNotImplemented(err)) throw err;
        mode = 'best-effort';
        // Without conditional writes, still check that a plain write is allowed.
        await this.client.send(new PutObjectCommand({ ...input, IfNoneMatch: undefined }));
      }
      mode ??= await this.client.send(new PutObjectCommand(input)).then(
        (): LockMode => 'best-effort',
        (err: unknown): LockMode => {
          if (isPreconditionFailed(err) || isConditionalConflict(err)) return 'atomic';
          if (isNotImplemented(err)) return 'best-effort';
          throw err;
        },
      );
    } catch (err) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.fullKey(probe) })).catch(() => undefined);
      throw this.wrap(err, `writing a probe object ${probe}`);
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.fullKey(probe) }));
    } catch (err) {
      throw this.wrap(err, `deleting a probe object ${probe}`);
    }
    if (mode === 'best-effort') this.warnBestEffort();
    return mode ?? 'best-effort';
  }

  private warnBestEffort(): void {
    if (this.warnedBestEffort) return;
    this.warnedBestEffort = true;
    this.warn(
      `storage "${this.name}": the S3 server at ${this.server()} ignores If-None-Match: locks are best effort ` +
        '(two bkp runs starting at the same moment could both take the lock)',
    );
  }

  private async putExclusiveBestEffort(key: string, fullKey: string, text: string): Promise<void> {
    if (await this.exists(fullKey, key)) throw new AlreadyExistsError(key);
    const nonce = randomBytes(12).toString('hex');
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.options.bucket, Key: fullKey, Body: Buffer.from(text, 'utf8'), Metadata: { [LOCK_NONCE]: nonce }, ...contentType(key) }),
      );
    } catch (err) {
      if (isPreconditionFailed(err)) throw new AlreadyExistsError(key);
      throw this.wrap(err, `writing ${key}`);
    }
    // Another run that passed the HEAD at the same time may have written after us: the lock is
    // whoever's write stayed.
    let head;
    try {
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: fullKey }));
    } catch (err) {
      if (isNotFound(err)) throw new AlreadyExistsError(key); // taken and released meanwhile: we do not hold it
      throw this.wrap(err, `reading ${key}`);
    }
    if (head.Metadata?.[LOCK_NONCE] !== nonce) throw new AlreadyExistsError(key);
  }

  private async exists(fullKey: string, key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: fullKey }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.wrap(err, `reading ${key}`);
    }
  }
}

function contentType(key: string): { ContentType?: string } {
  return key.endsWith('.json') ? { ContentType: 'application/json' } : {};
}
