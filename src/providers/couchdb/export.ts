import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { UserError } from '../../core/diagnostics.js';
import { DATA_TIMEOUT_MS, type CouchClient, type DbInfo, type ServerInfo } from './client.js';
import { ArrayElementSplitter } from './json-rows.js';
import { dbPath } from './settings.js';

/** A document as CouchDB's HTTP API gives it, and as one line of an export. */
export interface CouchDoc {
  _id: string;
  _rev: string;
  _revisions?: { start: number; ids: string[] };
  _deleted?: boolean;
  _conflicts?: string[];
  _attachments?: Record<string, { data?: string; stub?: boolean; content_type?: string; digest?: string; length?: number; revpos?: number }>;
  [field: string]: unknown;
}

/** What an export found, recorded in the manifest's facts. */
export interface ExportFacts {
  format: 'couchdb-ndjson/1';
  database: string;
  /** Documents written (each once, with all its live leaf revisions). */
  doc_count: number;
  /** Lines written: one per leaf revision (a document with a conflict has two or more). */
  revision_count: number;
  conflicted_docs: number;
  design_docs: number;
  attachments: number;
  /** A CouchDB 3 partitioned database: a restore creates it partitioned again. */
  partitioned: boolean;
  /** The database's `doc_count` and `update_seq` when the export started. */
  source_doc_count: number;
  update_seq: number | string;
  server: string;
  server_vendor: string;
  server_version: string;
}

interface AllDocsRow {
  id: string;
  value?: { rev: string; deleted?: boolean };
  doc?: CouchDoc | null;
  error?: string;
}

interface BulkGetResult {
  id: string;
  docs: { ok?: CouchDoc; error?: { id?: string; rev?: string; error?: string; reason?: string }; missing?: string }[];
}

/** Rows in the first page (small: a document may carry megabytes of attachments); later pages are sized from the bytes per document seen so far. */
const FIRST_PAGE = 10;
const MAX_PAGE = 5000;
/**
 * Bytes a page of `_all_docs` aims at: what is held while a page is written (two pages, with the
 * next one arriving), and what must fit in one request's timeout.
 */
const PAGE_BYTES = 2 * 1024 * 1024;
/** Documents (and their bytes) held back at most for one `_bulk_get` of their histories. */
const HELD_DOCS = 1000;
const HELD_BYTES = 2 * 1024 * 1024;
/** Documents per `_bulk_get` of histories, and how many run at once. */
const BULK_GET = 250;
const BULK_GET_PARALLEL = 4;
/** Lines are handed on in pieces of about this size: fewer, larger writes downstream. */
const CHUNK = 256 * 1024;

function generation(rev: string): number {
  return Number.parseInt(rev, 10);
}

function key(id: string, rev: string): string {
  return `${id}\n${rev}`;
}

/**
 * Streams every live document of a database as NDJSON: one line per leaf revision, each
 * with its `_revisions` history and its attachments inline (base64), which is exactly what
 * `_bulk_docs` with `new_edits: false` takes back.
 *
 * Pages come from `_all_docs?include_docs=true&conflicts=true&attachments=true`, keyed by
 * `startkey` (each live document exactly once, in id order, however long the export takes;
 * never `skip`, which CouchDB walks row by row), cut into rows as they arrive (json-rows.ts) and
 * each row handled alone. That listing lacks revision histories, so:
 * - a first-generation document with no conflict has a one-entry history, `{start: 1, ids: [hash
 *   of its _rev]}`, and is written at once, with no other request (most documents of
 *   insert-mostly databases, like sensor events);
 * - the others are held back (up to HELD_BYTES) and completed with `_bulk_get?revs=true`: without
 *   attachments for the winner, whose body and attachments the listing already brought (only its
 *   `_revisions` is taken), and with attachments for each revision of `_conflicts`, so a restore
 *   recreates the same revision tree, conflicts included. Leaves are named by `{id, rev}`: a
 *   `{id}`-only `_bulk_get` returns every leaf on Apache CouchDB but only the winner on PouchDB.
 *
 * Deleted documents (tombstones) are not exported: `_all_docs` does not list them, and a restore
 * into a fresh database has nothing for them to delete. Deleted leaves of live documents (a
 * conflict resolved by deleting the losing branch) are left out too: they hold no data and
 * `_conflicts` does not list them. `_local` documents (replication checkpoints) are not exported.
 * Design documents are (they are in `_all_docs`).
 *
 * The output is plain NDJSON: the storage's codec compresses it (gzip by default, so the artifact
 * is `….ndjson.gz`; zstd where the storage says so). A page is read whole (it is sized to about
 * PAGE_BYTES from the bytes per document seen so far), the next one is asked for at once so the
 * server builds it while this one is written, and the consumer's backpressure stops the paging:
 * memory stays at about two pages plus one held-back batch, whatever the database's size.
 */
export function exportDatabase(
  client: CouchClient,
  db: string,
  opts: { info: DbInfo; server: ServerInfo; signal?: AbortSignal; log: (line: string) => void },
): { stream: Readable; done: Promise<ExportFacts> } {
  let settle!: { resolve: (f: ExportFacts) => void; reject: (e: Error) => void };
  const done = new Promise<ExportFacts>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined);

  // Aborted when the export ends early (storage failed, cancelled): no request outlives it.
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([stop.signal, opts.signal]) : stop.signal;
  const counts = { docs: 0, lines: 0, conflicted: 0, design: 0, attachments: 0 };
  const path = dbPath(db);

  const openPage = (startkey: string | undefined, limit: number): Promise<AsyncIterable<Uint8Array>> => {
    const query: Record<string, string | number | boolean> = { include_docs: true, conflicts: true, attachments: true, limit: limit + 1 };
    if (startkey !== undefined) query.startkey = JSON.stringify(startkey);
    return client.stream('GET', `${path}/_all_docs`, { db, query, timeoutMs: DATA_TIMEOUT_MS, signal });
  };

  /** `_bulk_get` of named leaves, read result by result; `keep` picks what to retain of each. */
  const bulkGet = async <T>(docs: { id: string; rev?: string }[], attachments: boolean, keep: (d: CouchDoc) => T): Promise<Map<string, T[]>> => {
    const got = new Map<string, T[]>();
    if (docs.length === 0) return got;
    const body = await client.stream('POST', `${path}/_bulk_get`, { db, query: { revs: true, attachments }, body: { docs }, timeoutMs: DATA_TIMEOUT_MS, signal });
    const splitter = new ArrayElementSplitter();
    for await (const chunk of body) {
      for (const text of splitter.push(chunk)) {
        const r = JSON.parse(text) as BulkGetResult;
        for (const d of r.docs) {
          if (!d.ok || d.ok._deleted) continue;
          const k = docs[0]?.rev === undefined ? d.ok._id : key(d.ok._id, d.ok._rev);
          got.set(k, [...(got.get(k) ?? []), keep(d.ok)]);
        }
      }
    }
    if (!splitter.complete) throw new UserError(`${client.subject(db)}: an answer of _bulk_get ended early`);
    return got;
  };

  /**
   * `_bulk_get`s of at most BULK_GET docs, BULK_GET_PARALLEL at a time: a server answers them
   * document by document, and Apache CouchDB serves several requests at once.
   */
  const inParallel = async <T>(docs: { id: string; rev: string }[], get: (part: { id: string; rev: string }[]) => Promise<Map<string, T[]>>): Promise<Map<string, T[]>> => {
    const parts: { id: string; rev: string }[][] = [];
    for (let i = 0; i < docs.length; i += BULK_GET) parts.push(docs.slice(i, i + BULK_GET));
    const merged = new Map<string, T[]>();
    for (let i = 0; i < parts.length; i += BULK_GET_PARALLEL) {
      for (const m of await Promise.all(parts.slice(i, i + BULK_GET_PARALLEL).map(get))) for (const [k, v] of m) merged.set(k, v);
    }
    return merged;
  };

  /** Lines of one document: the winner first, then its conflicting leaves. */
  const take = (lines: CouchDoc[]): string => {
    counts.docs += 1;
    counts.lines += lines.length;
    if (lines.length > 1) counts.conflicted += 1;
    if (lines[0]!._id.startsWith('_design/')) counts.design += 1;
    let out = '';
    for (const l of lines) {
      counts.attachments += l._attachments ? Object.keys(l._attachments).length : 0;
      out += `${JSON.stringify(l)}\n`;
    }
    return out;
  };

  /** Completes held-back documents with their histories and conflicting leaves. */
  const complete = async (held: CouchDoc[]): Promise<string> => {
    const winners = held.filter((d) => generation(d._rev) > 1).map((d) => ({ id: d._id, rev: d._rev }));
    const conflicts = held.flatMap((d) => (d._conflicts ?? []).map((rev) => ({ id: d._id, rev })));
    const histories = await inParallel(winners, (part) => bulkGet(part, false, (d) => d._revisions));
    const leaves = await bulkGet(conflicts, true, (d) => d);
    // A winner whose revision is gone since the listing (updated, then compacted): the
    // document's current winner instead, or nothing if it was deleted meanwhile.
    const lost = held.filter((d) => generation(d._rev) > 1 && !histories.has(key(d._id, d._rev)));
    const latest = await bulkGet(lost.map((d) => ({ id: d._id })), true, (d) => d);
    let out = '';
    for (const d of held) {
      const conflicting = d._conflicts ?? [];
      delete d._conflicts;
      if (generation(d._rev) === 1) {
        d._revisions = { start: 1, ids: [d._rev.slice(d._rev.indexOf('-') + 1)] };
      } else {
        const h = histories.get(key(d._id, d._rev))?.[0];
        if (!h) {
          const now = (latest.get(d._id) ?? []).sort((a, b) => generation(b._rev) - generation(a._rev) || (b._rev > a._rev ? 1 : -1))[0];
          if (now) out += take([now]);
          else opts.log(`database "${db}": document "${d._id}" was deleted while the export ran: left out`);
          continue;
        }
        d._revisions = h;
      }
      const lines = [d];
      for (const rev of conflicting) {
        const leaf = leaves.get(key(d._id, rev))?.[0];
        if (leaf) lines.push(leaf);
      }
      out += take(lines);
    }
    return out;
  };

  /** A page's rows as JSON texts, and the id the next page starts at (the extra row's). */
  const readPage = async (body: AsyncIterable<Uint8Array>, limit: number): Promise<{ rows: string[]; next?: string }> => {
    const splitter = new ArrayElementSplitter();
    const rows: string[] = [];
    for await (const chunk of body) rows.push(...splitter.push(chunk));
    if (!splitter.complete) throw new UserError(`${client.subject(db)}: a page of _all_docs ended early`);
    if (rows.length <= limit) return { rows };
    const extra = JSON.parse(rows.pop()!) as AllDocsRow;
    return { rows, next: extra.id };
  };

  async function* generate(): AsyncGenerator<string> {
    let limit = FIRST_PAGE;
    let seenBytes = 0;
    let seenDocs = 0;
    try {
      let pending = openPage(undefined, limit);
      for (;;) {
        const { rows, next } = await readPage(await pending, limit);
        for (const text of rows) seenBytes += text.length;
        seenDocs += rows.length;
        // The next page is asked for before this one is written: the server builds it meanwhile.
        if (next !== undefined) {
          limit = Math.max(1, Math.min(MAX_PAGE, Math.floor(PAGE_BYTES / Math.max(1, seenBytes / Math.max(1, seenDocs)))));
          pending = openPage(next, limit);
          pending.catch(() => undefined);
        }
        let out = '';
        let held: CouchDoc[] = [];
        let heldBytes = 0;
        for (const text of rows) {
          const line = plainLine(text);
          if (line !== undefined) {
            counts.docs += 1;
            counts.lines += 1;
            out += `${line}\n`;
          } else {
            const doc = (JSON.parse(text) as AllDocsRow).doc;
            if (!doc) continue;
            if (generation(doc._rev) === 1 && !doc._conflicts?.length) {
              delete doc._conflicts;
              doc._revisions = { start: 1, ids: [doc._rev.slice(doc._rev.indexOf('-') + 1)] };
              out += take([doc]);
            } else {
              held.push(doc);
              heldBytes += text.length;
              if (heldBytes >= HELD_BYTES || held.length >= HELD_DOCS) {
                out += await complete(held);
                held = [];
                heldBytes = 0;
              }
            }
          }
          if (out.length >= CHUNK) {
            yield out;
            out = '';
          }
        }
        if (held.length) out += await complete(held);
        if (out) yield out;
        if (next === undefined) break;
      }
    } finally {
      stop.abort();
    }
  }

  const stream = Readable.from(generate(), { objectMode: false, highWaterMark: CHUNK });
  finished(stream).then(
    () =>
      settle.resolve({
        format: 'couchdb-ndjson/1',
        database: db,
        doc_count: counts.docs,
        revision_count: counts.lines,
        conflicted_docs: counts.conflicted,
        design_docs: counts.design,
        attachments: counts.attachments,
        partitioned: opts.info.props?.partitioned === true,
        source_doc_count: opts.info.doc_count,
        update_seq: opts.info.update_seq,
        server: client.endpoint.origin,
        server_vendor: opts.server.vendor,
        server_version: opts.server.version,
      }),
    (err: Error) => settle.reject(err),
  );
  return { stream, done };
}

/**
 * The `_all_docs` row of a plain document (first revision, no conflict, no attachment, not a
 * design document) turned into its export line by text alone: the row's `doc` object with its
 * one-entry `_revisions` appended. Most rows of most databases are such rows; this spares them a
 * JSON.parse and a JSON.stringify. A row that does not look exactly like one (another server's
 * formatting, say) returns undefined and takes the parsing path. A `"_conflicts":` that is only
 * text inside a field sends a plain row down that path too, which is merely slower.
 */
const PLAIN_ROW = /^\{"id":"(?:[^"\\]|\\.)*","key":"(?:[^"\\]|\\.)*","value":\{"rev":"1-([0-9a-f]+)"\},"doc":\{/;
const SPECIAL = /"_(?:conflicts|attachments|deleted)":/;

export function plainLine(row: string): string | undefined {
  if (row.startsWith('{"id":"_design/') || !row.endsWith('}}')) return undefined;
  const m = PLAIN_ROW.exec(row);
  if (!m || SPECIAL.test(row)) return undefined;
  // The doc object without its closing brace (the row ends with the doc's `}` and its own).
  return `${row.slice(m[0].length - 1, -2)},"_revisions":{"start":1,"ids":["${m[1]}"]}}`;
}
