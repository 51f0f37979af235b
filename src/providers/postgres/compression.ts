import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import type { Transform } from 'node:stream';
import { ChildTransform } from '../../storage/codec/compress.js';
import { UserError } from '../../core/diagnostics.js';
import type { PgCompression } from './settings.js';
import type { PgTool } from './tools.js';

const run = promisify(execFile);

/** Who compresses a dump: pg_dump itself (`-Z`), a program in the stream after it, or nobody. */
export type CompressedBy = 'pg_dump' | 'stream' | 'none';

/** How one dump is compressed, decided from the setting and what the local pg_dump can do. */
export interface CompressionPlan {
  method: PgCompression;
  level?: number;
  by: CompressedBy;
  /** `-Z …` for pg_dump. */
  pgDumpArgs: string[];
  /** The program that compresses the stream (`by: stream`), with its version for the manifest. */
  tool?: StreamTool;
  /** Appended to the artifact's extension when the stream is compressed: `.zst`, `.lz4`. */
  suffix: string;
}

export interface StreamTool {
  program: string;
  version: string;
}

/** pg_dump learnt lz4 and zstd (`-Z method:level`) in PostgreSQL 16; before, `-Z N` is gzip. */
const METHODS_FROM_MAJOR = 16;

const SUFFIX: Record<PgCompression, string> = { gzip: '.gz', zstd: '.zst', lz4: '.lz4', none: '' };

async function probeTool(program: string): Promise<StreamTool | undefined> {
  try {
    const { stdout, stderr } = await run(program, ['--version'], { timeout: 10_000 });
    const m = /v?(\d+\.\d+(?:\.\d+)?)/.exec(stdout + stderr);
    return { program, version: m ? m[1]! : 'unknown' };
  } catch {
    return undefined;
  }
}

/**
 * gzip always goes to pg_dump (every pg_dump has it; in the directory format its workers compress
 * in parallel). lz4 and zstd go to pg_dump from 16 on; with an older pg_dump the dump is taken
 * uncompressed and `zstd -T0` (every core) or `lz4` compresses the stream.
 */
export async function planCompression(method: PgCompression, level: number | undefined, dump: PgTool, target: string): Promise<CompressionPlan> {
  if (method === 'none') return { method, by: 'none', pgDumpArgs: ['--compress=0'], suffix: '' };
  if (method === 'gzip') return { method, level, by: 'pg_dump', pgDumpArgs: [dump.major >= METHODS_FROM_MAJOR ? `--compress=gzip:${level}` : `--compress=${level}`], suffix: '' };
  if (dump.major >= METHODS_FROM_MAJOR) return { method, level, by: 'pg_dump', pgDumpArgs: [`--compress=${method}:${level}`], suffix: '' };
  const tool = await probeTool(method);
  if (!tool) {
    throw new UserError(
      `target ${target}: compression ${method} needs pg_dump ${METHODS_FROM_MAJOR} or newer (this one is ${dump.version}, ${dump.path}) or the ${method} program to compress the stream, and neither is available: ` +
        `install ${method} (Debian/Ubuntu: apt-get install ${method}), set pg_dump_path to a pg_dump ${METHODS_FROM_MAJOR}+, or choose compression: gzip`,
    );
  }
  return { method, level, by: 'stream', pgDumpArgs: ['--compress=0'], tool, suffix: SUFFIX[method] };
}

/** The compressing program's arguments: stdin to stdout, quiet. */
export function compressArgs(plan: CompressionPlan): string[] {
  if (plan.method === 'zstd') return ['-T0', `-${plan.level}`, '-q', '-c'];
  return [`-${plan.level}`, '-q', '-c'];
}

/** Arguments that compress `files` into one stream on stdout, a frame per file (`lz4` needs -m for several). */
export function compressFilesArgs(plan: CompressionPlan, files: string[]): string[] {
  if (plan.method === 'zstd') return ['-T0', `-${plan.level}`, '-q', '-c', ...files];
  return [`-${plan.level}`, '-q', '-m', '-c', ...files];
}

/** What the manifest's facts say about a stream-compressed backup (absent on older manifests: none). */
export interface StreamFacts {
  compression?: unknown;
  compressed_by?: unknown;
}

/**
 * Fails, before anything is touched, when the backup was stream-compressed and the program that
 * reads it back is missing (a restore would otherwise create the database first).
 */
export async function assertDecompressor(facts: StreamFacts, what: string): Promise<void> {
  if (facts.compressed_by !== 'stream' || (facts.compression !== 'zstd' && facts.compression !== 'lz4')) return;
  const program = facts.compression;
  if (!(await probeTool(program))) throw missingDecompressor(program, what);
}

function missingDecompressor(program: string, what: string): UserError {
  return new UserError(`${what}: the backup was compressed with ${program} by bkp and reading it needs the ${program} program: install ${program} (Debian/Ubuntu: apt-get install ${program})`);
}

/**
 * The Transform that undoes bkp's stream compression of a backup, or undefined when pg_dump
 * compressed it (or nothing did): restore and verify then hand the bytes to pg_restore as they are.
 */
export function streamDecompressor(facts: StreamFacts, what: string): Transform | undefined {
  if (facts.compressed_by !== 'stream') return undefined;
  switch (facts.compression) {
    case 'gzip':
      return createGunzip({ chunkSize: 256 * 1024 });
    case 'zstd':
    case 'lz4': {
      const program = facts.compression;
      return new ChildTransform(
        program,
        ['-d', '-q', '-c'],
        (detail) => `${what}: ${program} decompression failed (${detail})`,
        () => missingDecompressor(program, what),
      );
    }
    default:
      throw new UserError(`${what}: the backup's stream compression "${String(facts.compression)}" is not one this bkp reads (zstd, lz4, gzip)`);
  }
}
