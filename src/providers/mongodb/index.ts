import { pipeline } from 'node:stream/promises';
import type { Manifest } from '../../planner/types.js';
import { UserError } from '../../core/diagnostics.js';
import type { Provider, RestoreOptions } from '../types.js';
import { scanAlongside, scanGzippedArchive, type ArchiveSummary } from './archive.js';
import { documentCounts, listCollections, listDatabaseNames, serverVersion, userDatabases, withClient, type MongoEndpoint } from './client.js';
import { restoreDestination } from './destination.js';
import { databaseForUnit, mongoSettings, nsPattern, SYSTEM_DATABASES, toolUri, unitForDatabase, where, type MongoSettings } from './settings.js';
import { findTool, runTool } from './tools.js';

function endpoint(s: MongoSettings): MongoEndpoint {
  return { uri: s.uri, parsed: s.parsed, connectTimeoutS: s.connectTimeoutS };
}

/**
 * Documents per collection of `db` in an archive: what a restore of it must produce. Views
 * (their blocks are empty) and `system.*` namespaces (time series buckets, system.js) left out,
 * as in the driver's counts.
 */
export function archiveCounts(summary: ArchiveSummary, db: string): Record<string, number> {
  const notData = new Set(summary.prelude.filter((p) => p.db === db && p.type !== 'collection').map((p) => p.collection));
  const out: Record<string, number> = {};
  const prefix = `${db}.`;
  for (const [ns, n] of [...summary.namespaces].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!ns.startsWith(prefix)) continue;
    const coll = ns.slice(prefix.length);
    if (coll.startsWith('system.') || notData.has(coll)) continue;
    out[coll] = n.documents;
  }
  return out;
}

function countsOf(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) if (typeof n === 'number') out[k] = n;
  return out;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** `a (3), b (0)`, at most `max` names: a database may hold hundreds of collections. */
function listCounts(counts: Record<string, number>, max = 12): string {
  const names = Object.keys(counts);
  const shown = names.slice(0, max).map((n) => `${n} ${counts[n]}`);
  return `${shown.join(', ')}${names.length > max ? `, … (${names.length - max} more)` : ''}`;
}

/** The database a backup holds: recorded in its facts, else its unit's. */
function sourceDatabase(manifest: Manifest): string {
  return typeof manifest.facts.database === 'string' ? manifest.facts.database : databaseForUnit(manifest.unit);
}

/**
 * MongoDB (DESIGN §6): one unit per database, `mongodump --archive --gzip` streamed into storage
 * while the archive is checked on the way (structure, CRCs, documents per collection); the
 * `mongodb` driver for preflight, discovery and counts; `mongorestore` to restore, then the
 * restored counts compared with the backup's.
 */
export const mongodbProvider: Provider = {
  engine: 'mongodb',

  async discoverUnits(target) {
    // A list needs no connection: problems with the uri surface in the backup, where they are reported.
    const listed = target.settings.databases;
    if (Array.isArray(listed)) return listed.filter((d): d is string => typeof d === 'string').map(unitForDatabase);
    const s = mongoSettings(target);
    return (await withClient(endpoint(s), target.name, userDatabases)).map(unitForDatabase);
  },

  async backup(target, unit, ctx) {
    const s = mongoSettings(target);
    const db = databaseForUnit(unit);
    const tool = await findTool('mongodump', s.mongodump, target.name);
    // Preflight with the driver: an unreachable server, bad credentials or a misspelt database
    // fail here, clearly, before mongodump starts and before anything is written to storage.
    const pre = await withClient(endpoint(s), target.name, async (c) => {
      const version = await serverVersion(c);
      const names = await listDatabaseNames(c);
      if (names && !names.includes(db)) {
        const others = names.filter((n) => !SYSTEM_DATABASES.has(n));
        throw new UserError(`target ${target.name}: database "${db}" does not exist on ${where(s.parsed)}${others.length ? ` (it has ${others.join(', ')})` : ''}`);
      }
      const collections = await listCollections(c, db);
      const counts = await documentCounts(c, db, collections.filter((x) => x.type === 'collection').map((x) => x.name));
      return { version, views: collections.filter((x) => x.type === 'view').map((x) => x.name), counts };
    });
    const what = `target ${target.name}: mongodump of database "${db}" on ${where(s.parsed)}`;
    const run = runTool(tool, toolUri(s.parsed), [`--db=${db}`, '--archive', '--gzip'], what, { signal: ctx.signal });
    run.child.stdin.end();
    const scanned = scanAlongside(run.child.stdout, run.exited, `${what}: the archive it wrote`);
    const done = scanned.summary.then((summary) => {
      const counts = archiveCounts(summary, db);
      // mongodump is not a point-in-time copy of a live database: writes during the dump make
      // the archive differ from the counts taken before it. The archive's counts are what a
      // restore gives back, so those are the ones restore compares with.
      const changed = Object.keys({ ...counts, ...pre.counts }).filter((k) => counts[k] !== pre.counts[k]);
      if (changed.length > 0) ctx.log(`${what}: documents changed during the dump in ${changed.join(', ')} (counted before: ${changed.map((k) => pre.counts[k] ?? 0).join(', ')}; archived: ${changed.map((k) => counts[k] ?? 0).join(', ')})`);
      return {
        database: db,
        host: where(s.parsed),
        server_version: pre.version,
        mongodump_version: tool.version,
        format: 'mongodump-archive',
        archive_version: summary.formatVersion ?? 'unknown',
        collections: Object.keys(counts).length,
        documents: sum(counts),
        document_counts: counts,
        server_document_counts: pre.counts,
        ...(pre.views.length ? { views: pre.views } : {}),
        ...(changed.length ? { changed_during_dump: changed } : {}),
      };
    });
    done.catch(() => undefined);
    // The archive is gzipped by mongodump itself: storage adds no compression of its own.
    return { stream: scanned.stream, ext: 'archive.gz', compression: 'gzip', done };
  },

  async restoreTarget(target, unit, opts: RestoreOptions) {
    const s = mongoSettings(target);
    const d = restoreDestination(target, s, unit, opts.to);
    const collections = await withClient(d.endpoint, target.name, (c) => listCollections(c, d.db));
    return {
      destination: `database "${d.db}" on ${d.where}${collections.length ? ` (${plural(collections.length, 'collection')})` : ''}`,
      hasData: collections.length > 0,
      safety: { unit: unitForDatabase(d.db), settings: d.uriSetting ? { uri: d.uriSetting } : undefined },
    };
  },

  async restore(target, unit, artifact, manifest, opts, ctx) {
    const s = mongoSettings(target);
    const d = restoreDestination(target, s, unit, opts.to);
    const source = sourceDatabase(manifest);
    const tool = await findTool('mongorestore', s.mongorestore, target.name);
    await withClient(d.endpoint, target.name, (c) => c.db('admin').command({ ping: 1 }));

    const args = ['--archive', '--gzip', `--nsInclude=${nsPattern(source)}`];
    if (d.db !== source) args.push(`--nsFrom=${nsPattern(source)}`, `--nsTo=${nsPattern(d.db)}`);
    // --drop replaces the collections in the backup; the restore command allows it only with
    // --force, after its safety backup of what the destination held.
    if (opts.force) args.push('--drop');
    const what = `target ${target.name}: mongorestore into database "${d.db}" on ${d.where}`;
    const run = runTool(tool, d.toolUri, args, what, { log: ctx.log, logPrefix: 'mongorestore', signal: ctx.signal });
    run.child.stdout.resume();
    const [fed, exited] = await Promise.allSettled([pipeline(artifact, run.child.stdin), run.exited]);
    // When mongorestore fails, its own message says why; the EPIPE of the stdin copy does not.
    if (exited.status === 'rejected') throw exited.reason;
    if (fed.status === 'rejected') throw fed.reason;
    const stderr = exited.value;
    const m = /(\d+) document\(s\) restored successfully\. (\d+) document\(s\) failed to restore/.exec(stderr);

    // The check that matters: the driver counts what is now in the destination.
    const expected = countsOf(manifest.facts.document_counts) ?? countsOf(manifest.facts.server_document_counts);
    const details: string[] = [];
    if (m) details.push(`mongorestore ${tool.version}: ${m[1]} documents restored, ${m[2]} failed`);
    if (d.db !== source) details.push(`renamed ${source}.* to ${d.db}.*`);
    if (opts.force) details.push('collections of the backup were dropped first (--drop)');
    if (!expected) {
      details.push('the backup recorded no document counts: nothing to compare');
      return { destination: `database "${d.db}" on ${d.where}`, details };
    }
    const actual = await withClient(d.endpoint, target.name, (c) => documentCounts(c, d.db, Object.keys(expected)));
    const diffs = Object.keys(expected).filter((k) => actual[k] !== expected[k]);
    if (diffs.length > 0) {
      throw new UserError(
        `${what}: the restored document counts differ from the backup ${manifest.id}: ${diffs.map((k) => `${k} has ${actual[k]}, the backup ${expected[k]}`).join('; ')}` +
          `${m && Number(m[2]) > 0 ? ` (mongorestore reported ${m[2]} documents that failed to restore)` : ''}`,
      );
    }
    details.push(`document counts match the backup: ${plural(Object.keys(expected).length, 'collection')}, ${plural(sum(expected), 'document')} (${listCounts(expected)})`);
    return { destination: `database "${d.db}" on ${d.where}`, details };
  },

  async verifyDeep(_target, artifact, manifest) {
    const summary = await scanGzippedArchive(artifact);
    const db = sourceDatabase(manifest);
    const counts = archiveCounts(summary, db);
    const recorded = countsOf(manifest.facts.document_counts);
    if (recorded) {
      const diffs = Object.keys({ ...recorded, ...counts }).filter((k) => recorded[k] !== counts[k]);
      if (diffs.length > 0) throw new UserError(`the archive's document counts differ from the manifest's: ${diffs.map((k) => `${k} ${counts[k] ?? 'absent'} (manifest ${recorded[k] ?? 'absent'})`).join(', ')}`);
    }
    const versions = [summary.toolVersion && `mongodump ${summary.toolVersion}`, summary.serverVersion && `MongoDB ${summary.serverVersion}`].filter(Boolean).join(', ');
    const names = Object.keys(counts);
    return [
      `mongodump archive ${summary.formatVersion ?? '(no version)'}${versions ? ` (${versions})` : ''}: ${plural(names.length, 'collection')}, ${plural(sum(counts), 'document')}, every CRC matches; ${summary.bytes} bytes uncompressed${names.length ? ` — ${listCounts(counts)}` : ''}`,
    ];
  },
};
