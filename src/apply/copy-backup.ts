import { pipeline } from 'node:stream';
import type { Manifest } from '../planner/types.js';
import type { OnProgress, Storage } from '../storage/types.js';
import { manifestKeyFor } from '../storage/catalog-keys.js';
import { HashingStream } from './write-backup.js';

/**
 * Copies one backup from a storage to another, streamed (get → put), under the same name, so the
 * two catalogs list the same id. The manifest is written last, as for a backup; it records the
 * stored size and sha256 in the destination and where the copy came from.
 */
export async function copyBackup(opts: {
  from: Storage;
  key: string;
  manifest: Manifest;
  to: Storage;
  onProgress?: OnProgress;
}): Promise<Manifest> {
  const { from, key, manifest, to } = opts;
  const source = await from.get(key);
  const hashing = new HashingStream();
  const body = pipeline(source, hashing, () => undefined);
  const { size } = await to.put(key, body, opts.onProgress);
  const sha256 = hashing.digest();
  if (size !== manifest.size || sha256 !== manifest.sha256) {
    await to.delete(key).catch(() => undefined);
    throw new Error(`copy of ${key} from ${from.name} to ${to.name} does not match its manifest (read ${size} bytes, sha256 ${sha256.slice(0, 12)}…; manifest says ${manifest.size} bytes, ${manifest.sha256.slice(0, 12)}…): the source is damaged, nothing was copied`);
  }
  const copied: Manifest = { ...manifest, size, sha256, copied_from: from.name };
  await to.putText(manifestKeyFor(key), `${JSON.stringify(copied, null, 2)}\n`);
  return copied;
}
