import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, Unpack, type ReadEntry } from 'tar';
import { UserError } from '../../core/diagnostics.js';
import { pumpInto } from '../files/pump.js';

/** The members a pg_dump directory holds: flat names only (`toc.dat`, `3376.dat.gz`, `blob_16400.dat`). */
const MEMBER = /^(toc\.dat|blobs(_\d+)?\.toc|(blob_)?\d+\.dat(\.(gz|lz4|zst))?)$/;
/** The table-of-contents files pg_restore --list reads; the data files it does not. */
const TOC = /^(toc\.dat|blobs(_\d+)?\.toc)$/;

function memberName(entry: ReadEntry): string {
  return entry.path.replace(/^\.\//, '');
}

/**
 * Extracts the tar of a directory-format dump into `dir` (created), writing nothing but the
 * members a pg_dump directory holds: a damaged or foreign archive cannot write outside `dir`.
 */
export async function extractDump(what: string, artifact: Readable, dir: string): Promise<{ files: number; bytes: number }> {
  await mkdir(dir, { recursive: true });
  let files = 0;
  let bytes = 0;
  const refused: string[] = [];
  const unpack = new Unpack({
    cwd: dir,
    strict: true,
    maxDecompressionRatio: Number.POSITIVE_INFINITY,
    filter: (p: string, entry: unknown) => {
      const e = entry as ReadEntry;
      const ok = e.type === 'File' && MEMBER.test(p.replace(/^\.\//, ''));
      if (ok) {
        files += 1;
        bytes += e.size;
      } else refused.push(p);
      return ok;
    },
  });
  await pumpInto(artifact, unpack, (err) => new UserError(`${what}: the archive is truncated or corrupt (${err.message})`));
  if (refused.length > 0) throw new UserError(`${what}: the archive holds members a pg_dump directory does not: ${refused.slice(0, 5).join(', ')}`);
  return { files, bytes };
}

export interface DumpListing {
  /** Every member, with its size. */
  members: Map<string, number>;
}

/**
 * Reads a whole directory-format tar (every header checksummed, every byte read), keeping only
 * the table-of-contents files, which it writes into `tocDir` for `pg_restore --list`.
 */
export async function readDumpTar(what: string, artifact: Readable, tocDir: string): Promise<DumpListing> {
  await mkdir(tocDir, { recursive: true });
  const members = new Map<string, number>();
  const problems: string[] = [];
  const writes: Promise<void>[] = [];
  const parser = new Parser({
    maxDecompressionRatio: Number.POSITIVE_INFINITY,
    onReadEntry: (entry: ReadEntry) => {
      const name = memberName(entry);
      if (entry.type !== 'File' || !MEMBER.test(name)) {
        problems.push(`unexpected member ${entry.path}`);
        entry.resume();
        return;
      }
      members.set(name, entry.size);
      if (TOC.test(name)) writes.push(pipeline(entry, createWriteStream(path.join(tocDir, name))));
      else entry.resume();
    },
    onwarn: (code: string, message: string) => {
      if (code !== 'TAR_ENTRY_INFO') problems.push(message);
    },
  });
  await pumpInto(artifact, parser, (err) => new UserError(`${what}: the archive is truncated or corrupt (${err.message})`));
  await Promise.all(writes);
  if (problems.length > 0) throw new UserError(`${what}: the archive is truncated or corrupt (${problems[0]})`);
  return { members };
}
