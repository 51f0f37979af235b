import { createWriteStream } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A private temp folder (mode 0700: a snapshot holds every key and value, secrets included). */
export interface Staging {
  dir: string;
  file: string;
  remove(): Promise<void>;
}

export async function stagingDir(prefix: string): Promise<Staging> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await chmod(dir, 0o700);
  return { dir, file: path.join(dir, 'snapshot.db'), remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Writes a stream to a staged file, for the etcdctl commands that only take a file path
 * (`snapshot status`, `snapshot restore`). The caller removes it with `remove()`.
 */
export async function stageStream(artifact: Readable, prefix: string): Promise<Staging> {
  const st = await stagingDir(prefix);
  try {
    await pipeline(artifact, createWriteStream(st.file, { mode: 0o600 }));
    return st;
  } catch (err) {
    await st.remove();
    throw err;
  }
}
