import { createHash } from 'node:crypto';
import { pipeline, Transform } from 'node:stream';
import type { Target } from '../policy/types.js';
import type { BackupKind, Manifest } from '../planner/types.js';
import type { Provider, ProviderContext } from '../providers/types.js';
import type { OnProgress, Storage } from '../storage/types.js';
import { artifactKey, manifestKeyFor } from '../storage/catalog-keys.js';
import { newId } from '../core/ids.js';
import { artifactSuffix, encodeStreams, encryptionName, resolveCompression, type StorageEncoding } from '../storage/codec/index.js';

/** A transform that hashes and counts what passes through it, so the artifact is read once. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Takes one backup: engine → hash (content) → compress → encrypt → hash (stored) → storage,
 * streamed end to end. The artifact goes to a temporary name and is renamed by the storage; the
 * manifest is written last, so a crash at any point leaves at worst an incomplete artifact that
 * the next plan cleans up.
 */
export async function writeBackup(opts: {
  target: Target;
  unit: string;
  kind: BackupKind;
  provider: Provider;
  storage: Storage;
  startedAt: Date;
  ctx: ProviderContext;
  onProgress?: OnProgress;
  /** Wall time now, for finished_at: with --now the start is fixed, the duration is real. */
  elapsedMs: () => number;
  /**
   * The storage's `compression` and `encryption.key` (see `storageEncoding`). Compression left
   * undefined: `none` when the engine's output is already compressed, else gzip.
   */
  encode?: StorageEncoding;
}): Promise<Manifest> {
  const { target, unit, kind, provider, storage, startedAt } = opts;
  const id = newId();
  const produced = await provider.backup(target, unit, opts.ctx);
  // `done` may reject before the upload notices; keep that from being an unhandled rejection.
  produced.done.catch(() => undefined);
  const compression = resolveCompression(opts.encode?.compression ?? produced.storageCompression, produced.compression);
  const encodeKey = opts.encode?.key;
  const encoders = encodeStreams({ compression, key: encodeKey });
  const stored = new HashingStream();
  // Nothing to encode: what is stored is the content, hashed once.
  const content = encoders.length ? new HashingStream() : stored;
  // The first encoder failure (zstd missing…) is the error to report, not the storage's echo of it.
  let encodeError: Error | undefined;
  for (const e of encoders) e.once('error', (err: Error) => (encodeError ??= err));
  pipeline(encoders.length ? [produced.stream, content, ...encoders, stored] : [produced.stream, stored], () => undefined);
  const key = artifactKey(target.name, unit, startedAt, id, kind, `${produced.ext}${artifactSuffix({ compression, key: encodeKey })}`);
  let size: number;
  try {
    ({ size } = await storage.put(key, stored, opts.onProgress));
  } catch (err) {
    throw encodeError ?? err;
  }
  let facts: Record<string, unknown>;
  try {
    facts = await produced.done;
  } catch (err) {
    // The engine failed although bytes arrived (e.g. pg_dump exited non-zero at the end).
    await storage.delete(key).catch(() => undefined);
    throw err;
  }
  if (size !== stored.bytes) {
    await storage.delete(key).catch(() => undefined);
    throw new Error(`storage ${storage.name} stored ${size} bytes of ${key} but ${stored.bytes} were produced`);
  }
  const sha256 = stored.digest();
  const manifest: Manifest = {
    format: 'bkp-manifest/1',
    id,
    target: target.name,
    unit,
    engine: target.engine,
    kind,
    started_at: startedAt.toISOString(),
    finished_at: new Date(startedAt.getTime() + opts.elapsedMs()).toISOString(),
    size,
    sha256,
    compression,
    encryption: encryptionName({ key: encodeKey }),
    content_size: content.bytes,
    content_sha256: content === stored ? sha256 : content.digest(),
    artifact: key.slice(key.lastIndexOf('/') + 1),
    facts: { ...facts, engine_compression: produced.compression },
  };
  await storage.putText(manifestKeyFor(key), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
