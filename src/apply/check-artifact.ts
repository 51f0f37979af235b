import { pipeline } from 'node:stream';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { BackupRecord, Manifest } from '../planner/types.js';
import type { Storage } from '../storage/types.js';
import type { Provider } from '../providers/types.js';
import type { Target } from '../policy/types.js';
import { HashingStream } from './write-backup.js';

/** The outcome of checking one artifact against its manifest. */
export interface ArtifactCheck {
  ok: boolean;
  problems: string[];
  details: string[];
}

/**
 * Reads a whole artifact once: size and sha256 against the manifest, and with `deep` the engine's
 * own check of its format on the same bytes (every tar entry, `pg_restore --list`…).
 */
export async function checkArtifact(storage: Storage, record: BackupRecord, manifest: Manifest, deep?: { provider: Provider; target: Target }): Promise<ArtifactCheck> {
  const problems: string[] = [];
  const details: string[] = [];
  let source: Readable;
  try {
    source = await storage.get(record.key);
  } catch (err) {
    return { ok: false, problems: [(err as Error).message], details };
  }
  const hashing = new HashingStream();
  const stream = pipeline(source, hashing, () => undefined);
  try {
    if (deep) details.push(...(await deep.provider.verifyDeep(deep.target, stream, manifest)));
    else await drain(stream);
  } catch (err) {
    problems.push(`${deep ? 'deep check' : 'read'} failed: ${(err as Error).message}`);
    stream.destroy();
  }
  if (problems.length === 0) {
    if (hashing.bytes !== manifest.size) problems.push(`size ${hashing.bytes} bytes, manifest says ${manifest.size}`);
    const sum = hashing.digest();
    if (sum !== manifest.sha256) problems.push(`sha256 ${sum.slice(0, 16)}… does not match the manifest's ${manifest.sha256.slice(0, 16)}…`);
  }
  return { ok: problems.length === 0, problems, details };
}

async function drain(stream: Readable): Promise<void> {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  stream.pipe(sink);
  await finished(sink);
}
