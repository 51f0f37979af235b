import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ReadEntry, Unpack } from 'tar';
import { UserError } from '../../core/diagnostics.js';
import { pumpInto } from './pump.js';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/** Warnings that only inform; anything else during a restore means a file did not come back. */
const HARMLESS_WARNINGS = new Set(['TAR_ENTRY_INFO', 'TAR_ENTRY_UNSUPPORTED']);

/**
 * Extracts a tar.gz into `dest` (created if missing), keeping modes, mtimes and, as root, owners.
 * Existing files are replaced (unlinked first, as GNU tar does), never merged. Returns the number
 * of files restored. Entry errors do not stop the extraction (the rest still comes back) but the
 * restore fails at the end, naming the first files that could not be written.
 */
export async function extractArchive(target: string, source: Readable, dest: string, log: (line: string) => void): Promise<number> {
  await mkdir(dest, { recursive: true });
  const umask = process.umask();
  let files = 0;
  const entryErrors: string[] = [];
  // node-tar creates files with the archived mode minus the process umask and has no option to
  // chmod them afterwards: remember the few files the umask would alter (group-writable ones, with
  // the usual 022) and fix them once they are written.
  const fixModes: { file: string; mode: number }[] = [];
  const unpack = new Unpack({
    cwd: dest,
    unlink: true,
    // chmod existing folders, and new ones the umask would alter, to their archived mode.
    chmod: true,
    processUmask: umask,
    // Our own archives, checksum-verified on the way in: a volume with a large sparse or zeroed
    // file legitimately compresses beyond tar's default 1000:1 safety limit.
    maxDecompressionRatio: Number.POSITIVE_INFINITY,
    onReadEntry: (entry: ReadEntry) => {
      if (!FILE_TYPES.has(entry.type)) return;
      files += 1;
      if (entry.mode !== undefined && (entry.mode & 0o7777 & umask) !== 0) {
        fixModes.push({ file: path.resolve(dest, entry.path), mode: entry.mode & 0o7777 });
      }
    },
    onwarn: (code: string, message: string, data: Record<string, unknown>) => {
      if (HARMLESS_WARNINGS.has(code)) return log(`tar: ${message}`);
      const where = data.entry instanceof ReadEntry ? data.entry.path : typeof data.path === 'string' ? data.path : undefined;
      entryErrors.push(where ? `${where}: ${message}` : message);
    },
  });
  await pumpInto(source, unpack, (err) => new UserError(`target "${target}": cannot restore: the archive is truncated or corrupt (${err.message})`));
  for (const { file, mode } of fixModes) await chmod(file, mode).catch(() => undefined);
  if (entryErrors.length > 0) {
    const shown = entryErrors.slice(0, 5).join('; ');
    const more = entryErrors.length > 5 ? ` (and ${entryErrors.length - 5} more)` : '';
    throw new UserError(`target "${target}": ${entryErrors.length} entries could not be restored into ${dest}: ${shown}${more}`);
  }
  return files;
}
