import type { Transform } from 'node:stream';
import type { Manifest } from '../../planner/types.js';
import type { StorageConfig } from '../../policy/types.js';
import { compressStream, decompressStream, type StorageCompression } from './compress.js';
import { EncryptStream } from './encrypt.js';
import { DecryptStream } from './decrypt.js';
import { CodecError, ENCRYPTION_FORMAT, subjectName, subjectPrefix, type CodecSubject } from './format.js';

/**
 * What bkp does to an artifact between the engine and the storage (DESIGN §6: engine → compress
 * → encrypt → hash → storage), and back. Pure stream plumbing: no storage I/O here.
 *
 * The manifest records it: `compression` is the storage-level compression bkp applied (an
 * engine's own, like the files engine's tar.gz, is in `facts.engine_compression`), `encryption`
 * is `none` or `aes-256-gcm-chunked/1` (format.ts), `size`/`sha256` are of the stored bytes and
 * `content_size`/`content_sha256` of the engine's output.
 */
export type { StorageCompression } from './compress.js';
export { CodecError, ENCRYPTION_FORMAT, type CodecSubject } from './format.js';

export interface EncodeOptions {
  compression: StorageCompression;
  /** Encrypt with this passphrase (a secret: never printed). */
  key?: string;
  /** gzip or zstd level. */
  level?: number;
  zstdPath?: string;
}

/** A storage's settings as writeBackup takes them (`compression` undefined: the engine decides). */
export interface StorageEncoding {
  compression?: StorageCompression;
  key?: string;
}

export function storageEncoding(storage: StorageConfig | undefined): StorageEncoding {
  return { compression: storage?.compression, key: storage?.encryption?.key };
}

/**
 * The storage-level compression for an engine's output: the storage's explicit setting wins;
 * otherwise `none` when the engine already compresses (tar.gz, pg_dump -Fc) and `gzip` when not.
 */
export function resolveCompression(explicit: StorageCompression | undefined, engine: Manifest['compression']): StorageCompression {
  return explicit ?? (engine !== 'none' ? 'none' : 'gzip');
}

/** The manifest's `encryption` for these options. */
export function encryptionName(opts: { key?: string }): Manifest['encryption'] {
  return opts.key !== undefined ? ENCRYPTION_FORMAT : 'none';
}

/** Compress then encrypt. Empty when there is nothing to do. */
export function encodeStreams(opts: EncodeOptions): Transform[] {
  const out: Transform[] = [];
  const c = compressStream(opts.compression, { level: opts.level, zstdPath: opts.zstdPath });
  if (c) out.push(c);
  if (opts.key !== undefined) out.push(new EncryptStream(opts.key));
  return out;
}

/** Appended to the engine's extension so a file says what it is: `.zst`, `.gz`, `.enc`. */
export function artifactSuffix(opts: { compression: StorageCompression; key?: string }): string {
  const c = opts.compression === 'gzip' ? '.gz' : opts.compression === 'zstd' ? '.zst' : '';
  return `${c}${opts.key !== undefined ? '.enc' : ''}`;
}

type DecodeManifest = Pick<Manifest, 'compression' | 'encryption'> & Partial<Pick<Manifest, 'format' | 'content_sha256'>>;

/**
 * Manifests written before bkp encoded at the storage level recorded the engine's compression in
 * `compression` and have no `content_sha256`: their artifact is the engine's output as is.
 * Recognized only on a whole manifest (one with `format`), never on a bare `{ compression, encryption }`.
 */
export function isLegacyManifest(m: DecodeManifest): boolean {
  return m.format !== undefined && m.content_sha256 === undefined && m.encryption === 'none';
}

/** Whether reading the artifact needs the storage's key. */
export function needsKey(m: Pick<Manifest, 'encryption'>): boolean {
  return m.encryption !== 'none';
}

/**
 * Decrypt then decompress, giving back the engine's output. Throws a CodecError when the
 * manifest says encrypted and no key is given, or names a format this bkp does not read.
 */
export function decodeStreams(manifest: DecodeManifest, key?: string, opts: { subject?: CodecSubject; zstdPath?: string } = {}): Transform[] {
  if (isLegacyManifest(manifest)) return [];
  assertDecodable(manifest, key, opts.subject);
  const out: Transform[] = [];
  if (manifest.encryption !== 'none' && key !== undefined) out.push(new DecryptStream(key, opts.subject));
  const d = decompressStream(manifest.compression, { zstdPath: opts.zstdPath });
  if (d) out.push(d);
  return out;
}

/**
 * Throws the CodecError decodeStreams would (encrypted and no key, a format this bkp does not
 * read) without building anything: for a restore to fail before it takes locks or touches data.
 */
export function assertDecodable(manifest: DecodeManifest, key?: string, subject?: CodecSubject): void {
  if (isLegacyManifest(manifest)) return;
  if (manifest.compression !== 'none' && manifest.compression !== 'gzip' && manifest.compression !== 'zstd') {
    throw new CodecError('unsupported', `storage-level compression "${manifest.compression}" is not one bkp writes (gzip, zstd, none)`);
  }
  if (manifest.encryption !== 'none') {
    const who = `${subjectPrefix(subject)}${subjectName(subject)}`;
    if (manifest.encryption !== ENCRYPTION_FORMAT) {
      throw new CodecError('unsupported', `${who} is encrypted with "${manifest.encryption}", which this bkp does not read (it reads ${ENCRYPTION_FORMAT}); upgrade bkp`);
    }
    if (key === undefined) {
      const where = subject?.storage ? `storage ${subject.storage}` : 'its storage';
      throw new CodecError('missing_key', `${who} is encrypted (${ENCRYPTION_FORMAT}) but ${where} has no encryption key in the policy: add encryption: { key: \${env:…} } with the key it was written with`);
    }
  }
}
