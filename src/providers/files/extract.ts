import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ReadEntry, Unpack } from 'tar';
import { UserError } from '../../core/diagnostics.js';
import { pumpInto } from './pump.js';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/** Warnings that only inform; anything else during a restore means a file did not come back. */
const HARMLESS_WARNINGS = new Set(['TAR_ENTRY_INFO', 'TAR_ENTRY_UNSUPPORTED']);

export interface ExtractOptions {
  /** Folder entries are extracted into (created if missing). */
  cwd: string;
  /** Where `cwd` really is, for the mode fix-up (in place, `cwd` is a symlink to `/`). */
  realCwd: string;
  /** Renames members (in-place restore); undefined refuses the member. */
  rewrite?: (member: string) => string | undefined;
  log: (line: string) => void;
}

/**
 * Extracts a tar.gz into `opts.cwd` (created if missing), keeping modes, mtimes and, as root, owners.
 * Existing files are replaced (unlinked first, as GNU tar does), never merged. Returns the number
 * of files restored. Entry errors do not stop the extraction (the rest still comes back) but the
 * restore fails at the end, naming the first files that could not be written.
 */
export async function extractArchive(target: string, source: Readable, opts: ExtractOptions): Promise<number> {
  const { cwd, realCwd, rewrite, log } = opts;
  await mkdir(cwd, { recursive: true });
  const umask = process.umask();
  let files = 0;
  const entryErrors: string[] = [];
  // node-tar creates files with the archived mode minus the process umask and has no option to
  // chmod them afterwards: remember the few files the umask would alter (group-writable ones, with
  // the usual 022) and fix them once they are written.
  const fixModes: { file: string; mode: number }[] = [];
  const unpack = new Unpack({
    cwd,
    unlink: true,
    // chmod existing folders, and new ones the umask would alter, to their archived mode.
    chmod: true,
    processUmask: umask,
    // Our own archives, checksum-verified on the way in: a volume with a large sparse or zeroed
    // file legitimately compresses beyond tar's default 1000:1 safety limit.
    maxDecompressionRatio: Number.POSITIVE_INFINITY,
    filter: (member: string) => {
      if (!rewrite || rewrite(member) !== undefined) return true;
      entryErrors.push(`${member}: outside the paths this backup was taken from`);
      return false;
    },
    // Runs before Unpack's own 'entry' handler (registered first), so a renamed path is the one
    // extracted and checked. Hard links name another member: rename their target the same way.
    onReadEntry: (entry: ReadEntry) => {
      if (rewrite) {
        entry.path = rewrite(entry.path) ?? entry.path;
        if (entry.type === 'Link' && entry.linkpath) entry.linkpath = rewrite(entry.linkpath) ?? entry.linkpath;
      }
      if (!FILE_TYPES.has(entry.type)) return;
      files += 1;
      if (entry.mode !== undefined && (entry.mode & 0o7777 & umask) !== 0) {
        fixModes.push({ file: path.resolve(realCwd, entry.path), mode: entry.mode & 0o7777 });
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
    throw new UserError(`target "${target}": ${entryErrors.length} entries could not be restored into ${realCwd}: ${shown}${more}`);
  }
  return files;
}
