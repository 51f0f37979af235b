import { pipeline } from 'node:stream';
import type { Manifest } from '../planner/types.js';
import type { OnProgress, Storage } from '../storage/types.js';
import { manifestKeyFor } from '../storage/catalog-keys.js';
import { artifactSuffix, decodeStreams, encodeStreams, encryptionName, type StorageCompression, type StorageEncoding } from '../storage/codec/index.js';
import { HashingStream } from './write-backup.js';

/**
 * Copies one backup from a storage to another, streamed, keeping its id so both catalogs list
 * the same backup. When the two storages encode alike (same compression, no encryption) the bytes
 * are copied as they are and checked against the source manifest; otherwise the artifact is
 * decoded with the source's key and encoded for the destination (its compression, its key), and
 * the content hash is checked against the source's `content_sha256`. Manifest last, as always.
 */
export async function copyBackup(opts: {
  from: Storage;
  fromEncoding: StorageEncoding;
  key: string;
  manifest: Manifest;
  to: Storage;
  toEncoding: StorageEncoding;
  onProgress?: OnProgress;
}): Promise<Manifest> {
  const { from, key, manifest, to } = opts;
  // Default compression for the destination: what the source storage chose for this backup.
  const compression: StorageCompression = opts.toEncoding.compression ?? (manifest.compression as StorageCompression);
  const sameBytes = manifest.encryption === 'none' && opts.toEncoding.key === undefined && compression === manifest.compression;

  const folder = key.slice(0, key.lastIndexOf('/') + 1);
  const srcSuffix = artifactSuffix({ compression: manifest.compression as StorageCompression, key: manifest.encryption !== 'none' ? '' : undefined });
  const base = manifest.artifact.endsWith(srcSuffix) ? manifest.artifact.slice(0, manifest.artifact.length - srcSuffix.length) : manifest.artifact;
  const artifact = sameBytes ? manifest.artifact : `${base}${artifactSuffix({ compression, key: opts.toEncoding.key })}`;
  const destKey = `${folder}${artifact}`;

  const source = await from.get(key);
  const content = new HashingStream();
  const stored = new HashingStream();
  const stages = sameBytes
    ? [source, stored]
    : [source, ...decodeStreams(manifest, opts.fromEncoding.key, { subject: { storage: from.name, id: manifest.id } }), content, ...encodeStreams({ compression, key: opts.toEncoding.key }), stored];
  let stageError: Error | undefined;
  for (const s of stages.slice(1)) s.once('error', (err: Error) => (stageError ??= err));
  pipeline(stages, () => undefined);
  let size: number;
  try {
    ({ size } = await to.put(destKey, stored, opts.onProgress));
  } catch (err) {
    throw stageError ?? err;
  }
  const sha256 = stored.digest();
  const mismatch = sameBytes
    ? size !== manifest.size || sha256 !== manifest.sha256
    : manifest.content_sha256 !== undefined && content.digest() !== manifest.content_sha256;
  if (mismatch) {
    await to.delete(destKey).catch(() => undefined);
    throw new Error(`copy of backup ${manifest.id} from ${from.name} to ${to.name} does not match its manifest: the source is damaged, nothing was copied`);
  }
  const copied: Manifest = { ...manifest, artifact, size, sha256, compression, encryption: encryptionName({ key: opts.toEncoding.key }), copied_from: from.name };
  await to.putText(manifestKeyFor(destKey), `${JSON.stringify(copied, null, 2)}\n`);
  return copied;
}
