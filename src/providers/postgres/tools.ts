import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../../core/diagnostics.js';

const run = promisify(execFile);

/** A PostgreSQL client tool and its major.minor version. */
export interface PgTool {
  path: string;
  version: string;
  major: number;
}

async function probe(bin: string): Promise<PgTool | undefined> {
  try {
    const { stdout } = await run(bin, ['--version'], { timeout: 10_000 });
    const m = /(\d+)(?:\.(\d+))?/.exec(stdout);
    if (!m) return undefined;
    return { path: bin, version: m[2] ? `${m[1]}.${m[2]}` : m[1]!, major: Number(m[1]) };
  } catch {
    return undefined;
  }
}

/** Debian keeps every installed major in /usr/lib/postgresql/<major>/bin, newest first here. */
function debianBinDirs(): string[] {
  try {
    return readdirSync('/usr/lib/postgresql')
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a))
      .map((d) => `/usr/lib/postgresql/${d}/bin`);
  } catch {
    return [];
  }
}

/**
 * Finds `pg_dump` (or a sibling tool) able to dump a server of major `serverMajor`: pg_dump
 * refuses servers newer than itself. `configured` (pg_dump_path) wins; otherwise the PATH one,
 * then Debian's versioned folders. The error says which versions were found and what to install.
 */
export async function findTool(name: 'pg_dump' | 'pg_restore' | 'pg_dumpall' | 'psql', serverMajor: number, configured: string | undefined, target: string): Promise<PgTool> {
  const fix = `install the PostgreSQL ${serverMajor} client (Debian/Ubuntu: apt-get install postgresql-client-${serverMajor}), or set pg_dump_path to a pg_dump ${serverMajor} or newer`;
  if (configured) {
    const bin = name === 'pg_dump' ? configured : path.join(path.dirname(configured), name);
    const tool = await probe(bin);
    if (!tool) throw new UserError(`target ${target}: ${bin} (from pg_dump_path) cannot be run`);
    if (tool.major < serverMajor) throw new UserError(`target ${target}: ${name} ${tool.version} (${bin}) is older than the server (PostgreSQL ${serverMajor}) and cannot dump it: ${fix}`);
    return tool;
  }
  const found: PgTool[] = [];
  for (const bin of [name, ...debianBinDirs().map((d) => path.join(d, name))]) {
    const tool = await probe(bin);
    if (!tool) continue;
    if (tool.major >= serverMajor) return tool;
    found.push(tool);
  }
  if (found.length === 0) throw new UserError(`target ${target}: ${name} is not installed: ${fix}`);
  throw new UserError(`target ${target}: ${name} ${found.map((t) => t.version).join(', ')} is older than the server (PostgreSQL ${serverMajor}) and cannot dump it: ${fix}`);
}
