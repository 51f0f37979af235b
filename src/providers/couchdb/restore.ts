import type { Readable } from 'node:stream';
import { UserError } from '../../core/diagnostics.js';
import { DATA_TIMEOUT_MS, type CouchClient } from './client.js';
import type { CouchDoc } from './export.js';
import { exportLines } from './ndjson.js';
import { DATABASE_NAME, databaseForUnit, dbPath, parseEndpoint, type CouchEndpoint, type CouchSettings } from './settings.js';

/** Where a restore writes: a server and a database on it. */
export interface CouchDestination {
  endpoint: CouchEndpoint;
  db: string;
  /** The database's URL without credentials: for people and for after_restore hooks. */
  display: string;
  /** `url` for a safety backup of the destination, when it is not on the target's own server. */
  urlSetting?: string;
}

/**
 * `--to` for couchdb: nothing (the unit's own database on the target's server), a database name
 * (on the target's server), a server URL ending in `/` or with no path (the unit's database
 * there), or a database URL (`https://host/NAME`: its last path segment is the database).
 */
export function restoreDestination(target: string, s: CouchSettings, unit: string, to: string | undefined): CouchDestination {
  const own = databaseForUnit(unit);
  const make = (endpoint: CouchEndpoint, db: string, urlSetting?: string): CouchDestination => ({ endpoint, db, display: `${endpoint.origin}${dbPath(db)}`, urlSetting });
  if (to === undefined || to === '') return make(s.server, own);
  if (/^https?:\/\//i.test(to)) {
    const u = new URL(to);
    const segments = u.pathname.split('/');
    const last = decodeURIComponent(segments.pop() ?? '');
    if (last === '') {
      const endpoint = parseEndpoint(to, `target ${target}: --to`);
      return make(endpoint, own, to);
    }
    u.pathname = segments.join('/') || '/';
    const serverUrl = u.toString();
    if (!DATABASE_NAME.test(last)) throw new UserError(`target ${target}: --to: "${last}" is not a CouchDB database name (lower case letters, digits and _$()+-/, starting with a letter); end a server URL with /`);
    return make(parseEndpoint(serverUrl, `target ${target}: --to`), last, serverUrl);
  }
  if (!DATABASE_NAME.test(to)) throw new UserError(`target ${target}: --to "${to}": for a couchdb target, give a database name, a server URL (https://host/) or a database URL (https://host/NAME)`);
  return make(s.server, to);
}

export interface LoadResult {
  docs: number;
  lines: number;
  designDocs: number;
}

/** Documents per `_bulk_docs` request, and the bytes that close a batch early (big attachments). */
const BATCH_DOCS = 1000;
const BATCH_BYTES = 2 * 1024 * 1024;
/** Batches in flight: the next one is read and sent while the server writes the previous. */
const IN_FLIGHT = 2;

type BulkDocsAnswer = ({ id?: string; rev?: string; ok?: boolean; error?: string; reason?: string })[];

/**
 * Loads an export (gzip NDJSON, one leaf revision per line) into a database with `_bulk_docs`
 * and `new_edits: false`, so every `_rev` and `_revisions` history is kept as it was, conflicts
 * included. Read line by line and written in bounded batches, two at a time: memory does not
 * grow with the export. Design documents are held back and written last: their
 * validate_doc_update functions must not judge the restored data (documents older than the
 * function may not pass it; PouchDB servers even replace the `_revisions` of every write with
 * the current winner's while one exists), and their views should not be built while the data
 * arrives. Every batch's answer is checked; failures are reported with their document ids.
 */
export async function loadExport(client: CouchClient, db: string, artifact: Readable, signal?: AbortSignal): Promise<LoadResult> {
  const failures: string[] = [];
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  const send = async (docs: string[]): Promise<void> => {
    // The lines are documents already: the body is built from them, not re-serialized.
    const body = `{"new_edits":false,"docs":[${docs.join(',')}]}`;
    const answer = await client.json<BulkDocsAnswer>('POST', `${dbPath(db)}/_bulk_docs`, { db, body, timeoutMs: DATA_TIMEOUT_MS, signal });
    for (const a of answer) {
      if (!a.error) continue;
      failed += 1;
      if (failures.length < 10) failures.push(`${a.id ?? '?'}: ${[a.error, a.reason].filter(Boolean).join(': ')}`);
    }
  };
  const flush = async (docs: string[]): Promise<void> => {
    if (docs.length === 0) return;
    const p = send(docs).finally(() => inFlight.delete(p));
    // Observed later (race/all); this keeps a batch failing meanwhile from being "unhandled".
    p.catch(() => undefined);
    inFlight.add(p);
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
  };

  const design: string[] = [];
  let batch: string[] = [];
  let batchBytes = 0;
  let count = 0;
  let docs = 0;
  let lastId: string | undefined;
  let lineNo = 0;
  try {
    for await (const lines of exportLines(artifact, `database "${db}"`)) {
      for (const line of lines) {
        lineNo += 1;
        if (line === '') continue;
        let doc: CouchDoc;
        try {
          doc = JSON.parse(line) as CouchDoc;
        } catch {
          throw new UserError(`line ${lineNo} of the export is not JSON: the backup is damaged`);
        }
        if (typeof doc._id !== 'string' || typeof doc._rev !== 'string') throw new UserError(`line ${lineNo} of the export is not a document with _id and _rev: the backup is damaged`);
        count += 1;
        // The export writes a document's leaves one after the other.
        if (doc._id !== lastId) docs += 1;
        lastId = doc._id;
        if (doc._id.startsWith('_design/')) {
          design.push(line);
          continue;
        }
        batch.push(line);
        batchBytes += line.length;
        if (batch.length >= BATCH_DOCS || batchBytes >= BATCH_BYTES) {
          const full = batch;
          batch = [];
          batchBytes = 0;
          await flush(full);
        }
      }
    }
    await flush(batch);
    await Promise.all(inFlight);
    if (design.length) await send(design);
  } finally {
    // A failed batch must not leave the others running unobserved.
    await Promise.allSettled(inFlight);
  }
  if (failed > 0) {
    throw new UserError(`target ${client.target}: ${failed} of ${count} revisions were refused by database "${db}" on ${client.where}: ${failures.join('; ')}${failed > failures.length ? '; …' : ''}`);
  }
  return { docs, lines: count, designDocs: design.length };
}

/**
 * Empties a database by deleting and re-creating it, keeping its `_security` object and its
 * partitioning. `new_edits: false` merges revision trees: written over live documents, a backup
 * would lose to every revision made since and leave documents created since in place. Re-created,
 * the database holds exactly the backup. (The restore command took a safety backup first.)
 */
export async function recreateDatabase(client: CouchClient, db: string, partitioned: boolean): Promise<void> {
  const security = await client.json<Record<string, unknown>>('GET', `${dbPath(db)}/_security`, { db }).catch(() => ({}));
  await client.json('DELETE', dbPath(db), { db });
  await client.createDb(db, partitioned);
  const info = await client.dbInfo(db);
  if (info.doc_count > 0) throw new UserError(`target ${client.target}: database "${db}" on ${client.where} still holds ${info.doc_count} documents after it was deleted and created again`);
  if (Object.keys(security).length > 0) await client.json('PUT', `${dbPath(db)}/_security`, { db, body: security });
}
