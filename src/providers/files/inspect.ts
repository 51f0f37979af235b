import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { UserError } from '../../core/diagnostics.js';
import { pumpInto } from './pump.js';

export interface ArchiveSummary {
  entries: number;
  files: number;
  /** Sum of the entries' sizes: the archive's uncompressed content. */
  bytes: number;
}

/**
 * Reads a whole tar.gz without writing anything: every header and every byte of content goes
 * through gzip's CRC and tar's checksums, so a truncated or damaged archive fails here.
 */
export async function inspectArchive(target: string, source: Readable): Promise<ArchiveSummary> {
  const summary: ArchiveSummary = { entries: 0, files: 0, bytes: 0 };
  const problems: string[] = [];
  const parser = new Parser({
    maxDecompressionRatio: Number.POSITIVE_INFINITY, // see extract.ts
    onReadEntry: (entry: ReadEntry) => {
      summary.entries += 1;
      if (entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile') summary.files += 1;
      summary.bytes += entry.size;
      entry.resume();
    },
    // In a listing, a bad header or a truncated last entry is only a warning to node-tar: not to us.
    onwarn: (code: string, message: string) => {
      if (code !== 'TAR_ENTRY_INFO') problems.push(message);
    },
  });
  const corrupt = (detail: string): UserError => new UserError(`target "${target}": the tar.gz archive is truncated or corrupt (${detail})`);
  await pumpInto(source, parser, (err) => corrupt(err.message));
  if (problems.length > 0) throw corrupt(problems[0] ?? 'unknown problem');
  return summary;
}
