import { readdirSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Pack, Parser, Unpack, type ReadEntry, type WriteEntry } from 'tar';
import { UserError } from '../../core/diagnostics.js';
import type { BackupStream, ProviderContext } from '../types.js';
import { pumpInto } from '../files/pump.js';
import { packAsReadable } from '../pack-readable.js';

/** The portable backup's manifest, as influxd 1.5+ writes it (`<timestamp>.manifest`). */
export interface PortableManifest {
  meta?: { fileName?: string; size?: number };
  limited?: boolean;
  files?: { database?: string; policy?: string; shardID?: number; fileName?: string; size?: number }[];
}

export interface FolderFacts {
  files: number;
  bytes: number;
}

/**
 * Streams a flat folder (influxd's portable backup) as tar.gz, like files/pack.ts, with
 * backpressure; the folder is removed once the stream ended, failed or was abandoned.
 */
export function packFolder(target: string, dir: string, ctx: ProviderContext): Omit<BackupStream, 'done'> & { done: Promise<FolderFacts> } {
  let files = 0;
  let bytes = 0;
  const pack = new Pack({
    cwd: dir,
    gzip: true,
    portable: true,
    maxReadSize: 1024 * 1024,
    onWriteEntry: (entry: WriteEntry) => {
      if (entry.type === 'File') {
        files += 1;
        bytes += entry.stat?.size ?? 0;
      }
    },
    onwarn: (_code: string, message: string) => ctx.log(`tar: ${message}`),
  });
  const { stream, done } = packAsReadable<FolderFacts>(pack, {
    target,
    facts: () => ({ files, bytes }),
    describe: (err) => new UserError(`target ${target}: tar of the influxd backup folder failed: ${err instanceof Error ? err.message : String(err)}`),
    finish: () => rmSync(dir, { recursive: true, force: true }),
    signal: ctx.signal,
  });

  for (const name of readdirSync(dir).sort()) pack.add(name);
  pack.end();
  return { stream, ext: 'tar.gz', compression: 'gzip', done };
}

/** Extracts an artifact into `dir`: plain files at the top level only, nothing else is written. */
export async function extractInto(target: string, artifact: Readable, dir: string): Promise<void> {
  const unpack = new Unpack({
    cwd: dir,
    strict: true,
    maxDecompressionRatio: Number.POSITIVE_INFINITY,
    filter: (p: string, entry: unknown) => !p.replace(/^\.\//, '').includes('/') && (entry as ReadEntry).type === 'File',
  });
  await pumpInto(artifact, unpack, (err) => new UserError(`target ${target}: cannot restore: the archive is truncated or corrupt (${err.message})`));
}

/**
 * Reads a whole artifact (gzip CRC and tar checksums on every byte) and checks that influxd's
 * portable manifest is there and that every file it lists (meta and shards) is in the archive.
 */
export async function inspectPortable(target: string, artifact: Readable): Promise<string[]> {
  const names = new Set<string>();
  const manifests: { name: string; text: string }[] = [];
  let bytes = 0;
  const problems: string[] = [];
  const parser = new Parser({
    maxDecompressionRatio: Number.POSITIVE_INFINITY,
    onReadEntry: (entry: ReadEntry) => {
      const name = entry.path.replace(/^\.\//, '');
      names.add(name);
      bytes += entry.size;
      if (name.endsWith('.manifest')) {
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => manifests.push({ name, text: Buffer.concat(chunks).toString('utf8') }));
      } else {
        entry.resume();
      }
    },
    onwarn: (code: string, message: string) => {
      if (code !== 'TAR_ENTRY_INFO') problems.push(message);
    },
  });
  const corrupt = (detail: string) => new UserError(`target ${target}: the tar.gz archive is truncated or corrupt (${detail})`);
  await pumpInto(artifact, parser, (err) => corrupt(err.message));
  if (problems.length > 0) throw corrupt(problems[0]!);
  if (manifests.length !== 1) throw new UserError(`target ${target}: not an influxd portable backup: ${manifests.length === 0 ? 'no .manifest file' : `${manifests.length} .manifest files`} in the archive`);
  const m = manifests[0]!;
  let parsed: PortableManifest;
  try {
    parsed = JSON.parse(m.text) as PortableManifest;
  } catch (err) {
    throw new UserError(`target ${target}: ${m.name} is not valid JSON: ${(err as Error).message}`);
  }
  const listed = [parsed.meta?.fileName, ...(parsed.files ?? []).map((f) => f.fileName)];
  if (!parsed.meta?.fileName) throw new UserError(`target ${target}: ${m.name} names no meta file`);
  const missing = listed.filter((f): f is string => typeof f !== 'string' || !names.has(f)).map((f) => f ?? '(no fileName)');
  if (missing.length > 0) throw new UserError(`target ${target}: ${m.name} lists files missing from the archive: ${missing.join(', ')}`);
  const shards = parsed.files ?? [];
  const dbs = [...new Set(shards.map((f) => f.database).filter((d): d is string => typeof d === 'string'))];
  return [`influxd portable backup: ${m.name}, meta and ${shards.length} shard file(s) present${dbs.length ? ` (${dbs.join(', ')})` : ''}, ${names.size} entries, ${bytes} bytes`];
}
