import { createGzip, createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Target } from '../../policy/types.js';
import type { Provider, ProviderContext, RestoreOptions } from '../types.js';
import { connect } from './connect.js';
import { databaseExists, databaseFacts, listDatabases, serverMajor, tableCount } from './inspect.js';
import { databaseForUnit, GLOBALS_UNIT, libpqEnv, pgSettings, unitForDatabase, where, type PgConnection } from './settings.js';
import { findTool } from './tools.js';
import { startTool } from './child.js';
import { restoreDestination } from './destination.js';

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
 * PostgreSQL (DESIGN §6): one unit per database, `pg_dump -Fc` streamed into storage; the `pg`
 * driver for preflight, discovery and facts; `pg_restore` to restore, `pg_restore --list` to
 * verify. `globals: true` adds the unit `@globals` (roles and tablespaces, `pg_dumpall -g`).
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
    const tool = startTool(dump.path, ['--format=custom', '--no-password'], libpqEnv(s.connection, db), `target ${target.name}: pg_dump of database "${db}" on ${where(s.connection)}`);
    tool.child.stdin.end();
    const done = tool.exited.then(() => ({ ...facts, database: db, host: where(s.connection), pg_dump_version: dump.version, format: 'custom' }));
    // The custom format compresses its data itself (gzip level 6 by default): storage adds none.
    return { stream: tool.child.stdout, ext: 'dump', compression: 'gzip', done };
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
    const { major, created } = await withClient(d.conn, d.conn.dbname, target.name, async (c) => {
      const m = await serverMajor(c);
      const exists = await databaseExists(c, d.db);
      if (!exists) await c.query(`CREATE DATABASE ${ident(d.db)}`);
      return { major: m.major, created: !exists };
    });
    const tool = await findTool('pg_restore', major, s.pgDumpPath, target.name);
    // The archive comes on stdin. --clean --if-exists: the runbook's "clears the target first";
    // --single-transaction: all or nothing, never a half-restored database.
    const args = ['--no-password', '--clean', '--if-exists', '--single-transaction', '--exit-on-error', `--dbname=${d.db}`];
    const run = startTool(tool.path, args, libpqEnv(d.conn, d.db), `target ${target.name}: pg_restore into database "${d.db}" on ${where(d.conn)}`, ctx.log);
    await Promise.all([pipeline(artifact, run.child.stdin), run.exited]);
    run.child.stdout.resume();
    const tables = await withClient(d.conn, d.db, target.name, tableCount);
    const expected = typeof manifest.facts.table_count === 'number' ? manifest.facts.table_count : undefined;
    return {
      destination: `database "${d.db}" on ${where(d.conn)}`,
      details: [`${created ? 'created the database, ' : ''}${tables} tables restored${expected !== undefined && expected !== tables ? ` (the backup recorded ${expected})` : ''}`],
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
    const run = startTool(tool.path, ['--list'], process.env, `pg_restore --list of backup ${manifest.id}`);
    let listing = '';
    run.child.stdout.setEncoding('utf8');
    run.child.stdout.on('data', (d: string) => (listing += d));
    await Promise.all([pipeline(artifact, run.child.stdin), run.exited]);
    const entries = listing.split('\n').filter((l) => l && !l.startsWith(';'));
    const data = entries.filter((l) => / TABLE DATA /.test(l)).length;
    return [`pg_dump custom archive: ${entries.length} TOC entries, ${data} with table data`];
  },
};

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


