import type { Provider } from '../types.js';
import { UserError } from '../../core/diagnostics.js';
import { CouchClient } from './client.js';
import { exportDatabase } from './export.js';
import { loadExport, recreateDatabase, restoreDestination } from './restore.js';
import { couchSettings, databaseForUnit, isSystemDatabase, unitForDatabase } from './settings.js';
import { inspectExport } from './verify.js';
import { applyReplication, observeReplications } from './replicator.js';

/**
 * CouchDB and Cloudant (DESIGN §6): one unit per database. Backups are exports: every live
 * document with its revision history, conflicts and attachments, as NDJSON (gzip from the storage
 * codec), streamed page by page (export.ts); restore loads them with `_bulk_docs` and `new_edits: false` (restore.ts), or
 * replicates back from the replica (reverse-replication.ts, `--from-replica`). The replication
 * tasks to `replicate_to` are declared resources, handled by the planner (replicator.ts).
 */
export const couchdbProvider: Provider = {
  engine: 'couchdb',

  async discoverUnits(target) {
    const s = couchSettings(target);
    const client = new CouchClient(s.server, target.name);
    if (s.databases === 'all') return (await client.allDbs()).filter((db) => !isSystemDatabase(db)).map(unitForDatabase);
    const missing: string[] = [];
    for (const db of s.databases) if (!(await client.dbInfoIfExists(db))) missing.push(db);
    if (missing.length === 1) throw new UserError(`target ${target.name}: database "${missing[0]}" does not exist on ${client.where}`);
    if (missing.length > 1) throw new UserError(`target ${target.name}: databases ${missing.map((m) => `"${m}"`).join(', ')} do not exist on ${client.where}`);
    return s.databases.map(unitForDatabase);
  },

  async backup(target, unit, ctx) {
    const s = couchSettings(target);
    const client = new CouchClient(s.server, target.name);
    const db = databaseForUnit(unit);
    // Preflight: an unreachable server, refused credentials or a missing database fail here,
    // before anything is written to storage.
    const [info, server] = await Promise.all([client.dbInfo(db), client.serverInfo()]);
    const { stream, done } = exportDatabase(client, db, { info, server, signal: ctx.signal, log: ctx.log });
    // Plain NDJSON: the storage codec compresses it (`….ndjson.gz` by default).
    return { stream, ext: 'ndjson', compression: 'none' as const, done: done.then((f): Record<string, unknown> => ({ ...f })) };
  },

  async restoreTarget(target, unit, opts) {
    const d = restoreDestination(target.name, couchSettings(target), unit, opts.to);
    const info = await new CouchClient(d.endpoint, target.name).dbInfoIfExists(d.db);
    return {
      destination: `CouchDB database ${d.display}${info ? ` (${info.doc_count} documents)` : ' (new database)'}`,
      hasData: (info?.doc_count ?? 0) > 0,
      safety: { unit: unitForDatabase(d.db), settings: d.urlSetting ? { url: d.urlSetting, databases: [d.db] } : undefined },
    };
  },

  async restore(target, unit, artifact, manifest, opts, ctx) {
    const d = restoreDestination(target.name, couchSettings(target), unit, opts.to);
    const client = new CouchClient(d.endpoint, target.name);
    const info = await client.dbInfoIfExists(d.db);
    const partitioned = manifest.facts.partitioned === true;
    const details: string[] = [];
    if (!info) {
      await client.createDb(d.db, partitioned);
      details.push('database created');
    } else if (info.doc_count > 0) {
      if (!opts.force) throw new UserError(`CouchDB database ${d.display} holds ${info.doc_count} documents: run again with --force to replace them`);
      await recreateDatabase(client, d.db, partitioned);
      details.push(`database deleted and created again (its _security kept): its ${info.doc_count} documents are replaced by the backup's`);
    }
    ctx.log(`loading backup ${manifest.id} into ${d.display}`);
    const loaded = await loadExport(client, d.db, artifact, ctx.signal);
    const after = await client.dbInfo(d.db);
    const f = manifest.facts;
    const expected = typeof f.doc_count === 'number' ? f.doc_count : loaded.docs;
    const source = typeof f.database === 'string' && f.database !== d.db ? ` of database "${f.database}"` : '';
    details.unshift(
      `${loaded.docs} documents${source} written with their revision histories (${loaded.lines} revisions, conflicts included; ${loaded.designDocs} design documents, written last)`,
    );
    details.push(
      after.doc_count === expected
        ? `document count checked: ${after.doc_count}, as in the backup`
        : `document count differs: the database holds ${after.doc_count}, the backup ${expected}`,
    );
    return { destination: d.display, details };
  },

  async verifyDeep(_target, artifact, manifest) {
    return inspectExport(artifact, manifest);
  },

  observeResources(target, desired, ctx) {
    return observeReplications(target, desired, ctx);
  },

  applyResource(target, action, desired, ctx) {
    const timeoutS = (target.settings as { replication_timeout?: number }).replication_timeout ?? 3600;
    return applyReplication(target, action, desired, ctx, { timeoutMs: timeoutS * 1000, pollMs: 250 });
  },
};
