import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';
import type { Provider, RestoreOptions } from '../types.js';
import { extractInto, inspectPortable, packFolder, type PortableManifest } from './archive.js';
import { databaseExists, listDatabases, waitQueryable } from './http.js';
import { databaseForUnit, influxSettings, unitForDatabase, type InfluxSettings } from './settings.js';
import { checkRpcReachable, folderBytes, influxdVersion, runInfluxd } from './tool.js';

/** The database a restore writes: `--to`/`--to-db NAME`, or the unit's own. */
function destinationDb(target: Target, unit: string, to: string | undefined): string {
  if (to === undefined || to === '') return databaseForUnit(unit);
  if (/[/\\]|:\/\//.test(to)) throw new UserError(`--to "${to}": for an influxdb target, give the name of a new database (--to-db NAME)`);
  return to;
}

function where(s: InfluxSettings): string {
  return `influxd ${s.rpc}`;
}

function refusal(s: InfluxSettings, db: string, to: string | undefined): UserError {
  return new UserError(
    `database "${db}" already exists on ${where(s)}: influxd restore -portable never overwrites a database; restore into a new one with --to-db NEW${to ? ' (a name that does not exist yet)' : ''}`,
  );
}

function portableManifest(dir: string): PortableManifest {
  const name = readdirSync(dir).find((f) => f.endsWith('.manifest'));
  if (!name) return {};
  return JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as PortableManifest;
}

/**
 * InfluxDB 1.x (DESIGN §6): one unit per database. `influxd backup -portable` over the RPC
 * service (`host`, default port 8088) into a temporary folder, streamed into storage as tar.gz,
 * the folder removed after; `influxd restore -portable` into a database that does not exist yet.
 * The HTTP API (`http`, default: the RPC host on port 8086) lists databases and checks restores.
 */
export const influxdbProvider: Provider = {
  engine: 'influxdb',

  async discoverUnits(target) {
    const s = influxSettings(target);
    const dbs = s.databases === 'all' ? await listDatabases(s.http, target.name) : s.databases;
    return dbs.map(unitForDatabase);
  },

  async backup(target, unit, ctx) {
    const s = influxSettings(target);
    const db = databaseForUnit(unit);
    const version = await influxdVersion(s, target.name);
    await checkRpcReachable(s, target.name);
    const dir = mkdtempSync(path.join(tmpdir(), 'bkp-influxdb-'));
    const what = `influxd backup of database "${db}" from ${s.rpc}`;
    let manifest: PortableManifest;
    try {
      await runInfluxd(s, ['backup', '-portable', '-host', s.rpc, '-database', db, dir], target.name, { what, log: ctx.log, signal: ctx.signal, watchDir: dir });
      manifest = portableManifest(dir);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      // influxd says only "backup failed: EOF" for a database that does not exist: ask the HTTP API.
      const exists = await databaseExists(s.http, target.name, db).catch(() => undefined);
      if (exists === false) throw new UserError(`target ${target.name}: database "${db}" does not exist on ${where(s)}`);
      throw err;
    }
    const shards = manifest.files?.length ?? 0;
    const packed = packFolder(target.name, dir, ctx);
    const done = packed.done.then((f) => ({ influxd_version: version, database: db, host: s.rpc, format: 'influxd-portable', shards, files: f.files, bytes: f.bytes }));
    done.catch(() => undefined);
    return { stream: packed.stream, ext: packed.ext, compression: packed.compression, done };
  },

  async restoreTarget(target, unit, opts: RestoreOptions) {
    const s = influxSettings(target);
    const db = destinationDb(target, unit, opts.to);
    // influxd refuses to restore over an existing database (and --force cannot change that):
    // say so before anything, rather than after a safety backup that could not help.
    if (await databaseExists(s.http, target.name, db)) throw refusal(s, db, opts.to);
    return { destination: `database "${db}" on ${where(s)}`, hasData: false, safety: opts.to ? undefined : { unit } };
  },

  async restore(target, unit, artifact, manifest, opts, ctx) {
    const s = influxSettings(target);
    const db = destinationDb(target, unit, opts.to);
    const source = typeof manifest.facts.database === 'string' ? manifest.facts.database : databaseForUnit(unit);
    await influxdVersion(s, target.name);
    await checkRpcReachable(s, target.name);
    const dir = mkdtempSync(path.join(tmpdir(), 'bkp-influxdb-restore-'));
    try {
      await extractInto(target.name, artifact, dir);
      const args = ['restore', '-portable', '-host', s.rpc, '-db', source, ...(db !== source ? ['-newdb', db] : []), dir];
      try {
        await runInfluxd(s, args, target.name, { what: `influxd restore into database "${db}" on ${s.rpc}`, log: ctx.log, signal: ctx.signal });
      } catch (err) {
        if (/may already exist/.test((err as Error).message)) throw refusal(s, db, opts.to);
        throw err;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const measurements = await waitQueryable(s.http, target.name, db);
    const shards = typeof manifest.facts.shards === 'number' ? manifest.facts.shards : undefined;
    return {
      destination: `database "${db}" on ${where(s)}`,
      details: [`restored ${shards ?? '?'} shard(s) of database "${source}"${db !== source ? ` as "${db}"` : ''}: ${measurements} measurement(s)`],
    };
  },

  async verifyDeep(target, artifact) {
    return inspectPortable(target.name, artifact);
  },
};
