import type { BackupRecord, Manifest } from '../planner/types.js';
import type { Storage } from './types.js';

/** Reads and sanity-checks a backup's manifest; a manifest that does not parse is reported, not trusted. */
export async function readManifest(storage: Storage, record: BackupRecord): Promise<Manifest> {
  const text = await storage.getText(record.manifestKey);
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    throw new Error(`manifest ${record.manifestKey} in storage ${storage.name} is not valid JSON`);
  }
  if (m.format !== 'bkp-manifest/1' || m.id !== record.id || typeof m.sha256 !== 'string' || typeof m.size !== 'number') {
    throw new Error(`manifest ${record.manifestKey} in storage ${storage.name} does not describe backup ${record.id}`);
  }
  return m;
}
