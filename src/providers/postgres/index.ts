import { availableParallelism } from 'node:os';
import path from 'node:path';
import { createGzip, createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { pipeline as streamPipeline, type Readable, type Transform, type Writable } from 'node:stream';
import { UserError } from '../../core/diagnostics.js';
import type { Target } from '../../policy/types.js';
import type { Provider, ProviderContext, RestoreOptions } from '../types.js';
import { connect } from './connect.js';
import { databaseExists, databaseFacts, listDatabases, serverMajor, tableCount } from './inspect.js';
import { databaseForUnit, GLOBALS_UNIT, libpqEnv, pgSettings, unitForDatabase, where, type PgConnection } from './settings.js';
import { findTool } from './tools.js';
import { startProcess, startTool } from './child.js';
import { restoreDestination } from './destination.js';
import { assertDecompressor, compressArgs, compressFilesArgs, planCompression, streamDecompressor } from './compression.js';
import { dumpCustom } from './dump-custom.js';
import { dumpDirectory } from './dump-directory.js';
import { createWorkDir, setKill } from './workdir.js';
import { Scavenging } from './scavenge.js';

/** `"my db"` as an SQL identifier. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function withClient<T>(conn: PgConnection, db: string, target: string, fn: (c: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> {
  const client = await connect(conn, db, target);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * PostgreSQL (DESIGN §6): one unit per database; `pg_dump -Fc` streamed into storage with one job,
 * `pg_dump -Fd -j N` streamed as a tar with more (issue 9); the `pg` driver for preflight,
 * discovery and facts; `pg_restore` to restore, `pg_restore --list` to verify. `globals: true`
 * adds the unit `@globals` (roles and tablespaces, `pg_dumpall -g`).
 */
export const postgresProvider: Provider = {
  engine: 'postgres',

  async discoverUnits(target) {
    const s = pgSettings(target);
    const dbs = s.databases === 'all' ? await withClient(s.connection, s.connection.dbname, target.name, listDatabases) : s.databases;
    return [...dbs.map(unitForDatabase), ...(s.globals ? [GLOBALS_UNIT] : [])];
  },

  async backup(target, unit, ctx) {
    const s = pgSettings(target);
    if (unit === GLOBALS_UNIT) return backupGlobals(target, ctx);
    const db = databaseForUnit(unit);
    // Preflight with the driver: a wrong password or a missing database fails here, clearly,
    // before pg_dump starts and before anything is written to storage.
    const facts = await withClient(s.connection, db, target.name, databaseFacts);
    const dump = await findTool('pg_dump', facts.server_major, s.pgDumpPath, target.name);
    const plan = await planCompression(s.compression, s.compressionLevel, dump, target.name);
    // More workers than tables would only hold idle connections.
    const jobs = s.jobs ?? Math.max(1, Math.min(availableParallelism(), facts.table_count));
    const what = `target ${target.name}: pg_dump of database "${db}" on ${where(s.connection)}`;
    const env = libpqEnv(s.connection, db);
    const compressor = plan.tool ? { program: plan.tool.program, args: compressArgs(plan) } : undefined;
    const recorded = {
      ...facts,
      database: db,
      host: where(s.connection),
      pg_dump_version: dump.version,
      jobs,
      compression: plan.method,
      ...(plan.level !== undefined ? { compression_level: plan.level } : {}),
      compressed_by: plan.by,
      ...(plan.tool ? { compressor: `${plan.tool.program} ${plan.tool.version}` } : {}),
    };
    const stored = {
      compression: plan.method,
      // compression: none was chosen: the storage must not gzip it behind the user's back.
      ...(plan.method === 'none' ? { storageCompression: 'none' as const } : {}),
    };
    if (jobs === 1) {
      const out = dumpCustom({ pgDump: dump.path, args: plan.pgDumpArgs, env, what, compressor, signal: ctx.signal });
      return { stream: scavenged(out.stream), ext: `dump${plan.suffix}`, ...stored, done: out.done.then(() => ({ ...recorded, format: 'custom' })) };
    }
    const files = plan.tool ? { program: plan.tool.program, args: (f: string[]) => compressFilesArgs(plan, f) } : undefined;
    const out = await dumpDirectory({ pgDump: dump.path, args: plan.pgDumpArgs, env, jobs, tempParent: s.tempDir, target: target.name, what, compressor: files, signal: ctx.signal });
    return { stream: scavenged(out.stream), ext: `tar${plan.suffix}`, ...stored, done: out.done.then((d) => ({ ...recorded, format: 'directory', ...d })) };
  },

  async restoreTarget(target, unit, opts: RestoreOptions) {
    const s = pgSettings(target);
    if (unit === GLOBALS_UNIT) return { destination: `roles and tablespaces of ${where(s.connection)}`, hasData: true, safety: { unit: GLOBALS_UNIT } };
    const d = restoreDestination(target, s, unit, opts.to);
    const exists = await withClient(d.conn, d.conn.dbname, target.name, (c) => databaseExists(c, d.db));
    const tables = exists ? await withClient(d.conn, d.db, target.name, tableCount) : 0;
    return {
      destination: `database "${d.db}" on ${where(d.conn)}${tables ? ` (${tables} tables)` : ''}`,
      hasData: tables > 0,
      safety: { unit: unitForDatabase(d.db), settings: d.connectionSetting ? { connection: d.connectionSetting } : undefined },
    };
  },

  async restore(target, unit, artifact, manifest, opts, ctx) {
    const s = pgSettings(target);
    if (unit === GLOBALS_UNIT) return restoreGlobals(target, artifact, ctx);
    const d = restoreDestination(target, s, unit, opts.to);
    const what = `target ${target.name}: pg_restore into database "${d.db}" on ${where(d.conn)}`;
    await assertDecompressor(manifest.facts, what);
    const { major, created } = await withClient(d.conn, d.conn.dbname, target.name, async (c) => {
      const m = await serverMajor(c);
      const exists = await databaseExists(c, d.db);
      if (!exists) await c.query(`CREATE DATABASE ${ident(d.db)}`);
      return { major: m.major, created: !exists };
    });
    const tool = await findTool('pg_restore', major, s.pgDumpPath, target.name);
    const source = decoded(artifact, streamDecompressor(manifest.facts, what));
    // --clean --if-exists: the runbook's "clears the target first".
    const common = ['--no-password', '--clean', '--if-exists', '--exit-on-error', `--dbname=${d.db}`];
    let jobs = 1;
    if (manifest.facts.format === 'directory') {
      const tables = typeof manifest.facts.table_count === 'number' ? manifest.facts.table_count : 1;
      jobs = s.jobs ?? Math.max(1, Math.min(availableParallelism(), tables));
      // pg_restore -j needs the files; they are staged in temp_dir and removed after.
      const work = await createWorkDir(s.tempDir, target.name);
      try {
        const dir = path.join(work.path, 'dump');
        // tar is loaded only here and in verify: a backup does not pay for it (~6 MB of RSS).
        const { extractDump } = await import('./dump-archive.js');
        await extractDump(what, source, dir);
        // --single-transaction cannot be combined with -j: a parallel restore is not all or nothing.
        const args = [...common, ...(jobs > 1 ? [`--jobs=${jobs}`] : ['--single-transaction']), '--format=directory', dir];
        const run = startProcess(tool.path, args, { env: libpqEnv(d.conn, d.db), what, log: ctx.log, stdin: 'ignore', stdout: 'ignore' });
        setKill(work, () => run.kill('SIGKILL'));
        await run.exited;
      } finally {
        await work.remove();
      }
    } else {
      // The archive comes on stdin; --single-transaction: all or nothing, never a half-restored database.
      const run = startTool(tool.path, [...common, '--single-transaction'], libpqEnv(d.conn, d.db), what, ctx.log);
      await Promise.all([pipeline(source, run.child.stdin), run.exited]);
      run.child.stdout.resume();
    }
    const tables = await withClient(d.conn, d.db, target.name, tableCount);
    const expected = typeof manifest.facts.table_count === 'number' ? manifest.facts.table_count : undefined;
    return {
      destination: `database "${d.db}" on ${where(d.conn)}`,
      details: [
        `${created ? 'created the database, ' : ''}${tables} tables restored${expected !== undefined && expected !== tables ? ` (the backup recorded ${expected})` : ''}` +
          (manifest.facts.format === 'directory' ? ` from the directory format with ${jobs} job${jobs === 1 ? '' : 's'}` : ''),
      ],
    };
  },

  async verifyDeep(target, artifact, manifest) {
    if (manifest.unit === GLOBALS_UNIT) {
      let lines = 0;
      const gunzip = createGunzip();
      gunzip.on('data', (b: Buffer) => (lines += b.toString('utf8').split('\n').length - 1));
      await pipeline(artifact, gunzip);
      return [`globals SQL: ${lines} lines`];
    }
    const s = pgSettings(target);
    const major = typeof manifest.facts.server_major === 'number' ? manifest.facts.server_major : 0;
    const tool = await findTool('pg_restore', major, s.pgDumpPath, target.name);
    const what = `pg_restore --list of backup ${manifest.id}`;
    await assertDecompressor(manifest.facts, what);
    const source = decoded(artifact, streamDecompressor(manifest.facts, what));
    const by = manifest.facts.compressed_by === 'stream' ? `, ${String(manifest.facts.compression)} stream` : '';
    if (manifest.facts.format === 'directory') return [await verifyDirectory(s.tempDir, target.name, tool.path, source, what, by)];
    const run = startTool(tool.path, ['--list'], process.env, what);
    let listing = '';
    run.child.stdout.setEncoding('utf8');
    run.child.stdout.on('data', (d: string) => (listing += d));
    await Promise.all([feedThenDrain(source, run.child.stdin), run.exited]);
    const entries = listing.split('\n').filter((l) => l && !l.startsWith(';'));
    const data = entries.filter((l) => / TABLE DATA /.test(l)).length;
    return [`pg_dump custom archive${by}: ${entries.length} TOC entries, ${data} with table data`];
  },
};

/** The artifact through a Scavenging pass (scavenge.ts); a failure or an early close of either side reaches the other. */
function scavenged(stream: Readable): Readable {
  const out = new Scavenging();
  streamPipeline(stream, out, () => undefined);
  return out;
}

/** The artifact through bkp's stream decompression, if it had one; errors of either reach the reader. */
function decoded(artifact: Readable, decompress: Transform | undefined): Readable {
  if (!decompress) return artifact;
  streamPipeline(artifact, decompress, () => undefined);
  return decompress;
}

/**
 * Writes `source` into a tool's stdin and, once the tool stops reading (pg_restore --list reads
 * the header and TOC of a custom archive and exits), reads the rest anyway: the caller checks the
 * sha256 of every byte.
 */
async function feedThenDrain(source: Readable, stdin: Writable): Promise<void> {
  let open = true;
  stdin.on('error', () => (open = false)); // EPIPE: the tool has what it needed
  stdin.on('close', () => (open = false));
  for await (const chunk of source) {
    if (!open) continue;
    if (!stdin.write(chunk as Buffer)) {
      await new Promise<void>((resolve) => {
        const go = () => {
          stdin.off('drain', go).off('close', go).off('error', go);
          resolve();
        };
        stdin.on('drain', go).on('close', go).on('error', go);
      });
    }
  }
  if (open) stdin.end();
}

/**
 * `--deep` for the directory format: the whole tar is read, its table-of-contents files go to a
 * temporary folder for `pg_restore --list`, and every TABLE DATA entry of that listing must have
 * its data file in the archive.
 */
async function verifyDirectory(tempParent: string, target: string, pgRestore: string, source: Readable, what: string, by: string): Promise<string> {
  const work = await createWorkDir(tempParent, target);
  try {
    const dir = path.join(work.path, 'toc');
    const { readDumpTar } = await import('./dump-archive.js');
    const { members } = await readDumpTar(what, source, dir);
    if (!members.has('toc.dat')) throw new UserError(`${what}: the archive has no toc.dat`);
    const run = startProcess(pgRestore, ['--list', '--format=directory', dir], { what, stdin: 'ignore' });
    let listing = '';
    run.stdout!.setEncoding('utf8');
    run.stdout!.on('data', (d: string) => (listing += d));
    await run.exited;
    const entries = listing.split('\n').filter((l) => l && !l.startsWith(';'));
    const data = entries.map((l) => /^(\d+); \d+ \d+ TABLE DATA (.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
    const names = [...members.keys()];
    const missing = data.filter((m) => !names.some((n) => new RegExp(`^${m[1]}\\.dat(\\.(gz|lz4|zst))?$`).test(n)));
    if (missing.length > 0) {
      throw new UserError(`${what}: the archive lacks the data of ${missing.length} table(s): ${missing.slice(0, 5).map((m) => `${m[1]}.dat (${m[2]!.replace(/ \S+$/, '')})`).join(', ')}`);
    }
    const bytes = [...members.values()].reduce((a, b) => a + b, 0);
    return `pg_dump directory archive (tar${by}): ${entries.length} TOC entries, ${data.length} with table data, every data file present (${members.size} files, ${bytes} bytes)`;
  } finally {
    await work.remove();
  }
}

async function backupGlobals(target: Target, ctx: ProviderContext) {
  const s = pgSettings(target);
  const { version, major } = await withClient(s.connection, s.connection.dbname, target.name, serverMajor);
  const tool = await findTool('pg_dumpall', major, s.pgDumpPath, target.name);
  const run = startTool(tool.path, ['--globals-only', '--no-password'], libpqEnv(s.connection, s.connection.dbname), `target ${target.name}: pg_dumpall --globals-only on ${where(s.connection)}`, ctx.log);
  run.child.stdin.end();
  const gzip = createGzip();
  run.child.stdout.pipe(gzip);
  run.child.stdout.on('error', (err) => gzip.destroy(err));
  const done = run.exited.then(() => ({ server_version: version, server_major: major, host: where(s.connection), pg_dumpall_version: tool.version, format: 'sql' }));
  return { stream: gzip, ext: 'sql.gz', compression: 'gzip' as const, done };
}

async function restoreGlobals(target: Target, artifact: Readable, ctx: ProviderContext) {
  const s = pgSettings(target);
  const { major } = await withClient(s.connection, s.connection.dbname, target.name, serverMajor);
  const tool = await findTool('psql', major, s.pgDumpPath, target.name);
  // Roles that already exist make CREATE ROLE fail; psql goes on (ON_ERROR_STOP off) and logs it.
  const run = startTool(tool.path, ['--no-password', '--quiet', '-v', 'ON_ERROR_STOP=0', '-f', '-'], libpqEnv(s.connection, s.connection.dbname), `target ${target.name}: psql (globals)`, ctx.log);
  run.child.stdout.resume();
  await Promise.all([pipeline(artifact, createGunzip(), run.child.stdin), run.exited]);
  return { destination: `roles and tablespaces of ${where(s.connection)}`, details: ['globals applied (existing roles are reported above and kept)'] };
}


