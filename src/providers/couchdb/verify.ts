import type { Readable } from 'node:stream';
import type { Manifest } from '../../planner/types.js';
import { UserError } from '../../core/diagnostics.js';
import { exportLines } from './ndjson.js';

const REV = /^\d+-[0-9a-zA-Z]+$/;

/**
 * `verify --deep` of an export: reads it all, checks that every line is a JSON document with a
 * string `_id` and a `_rev` (`N-hash`), a `_revisions` history ending at that `_rev` when there is
 * one, and that the counts match what the manifest recorded when the export was written.
 */
export async function inspectExport(artifact: Readable, manifest: Manifest): Promise<string[]> {
  const what = `backup ${manifest.id}`;
  let lineNo = 0;
  let revisions = 0;
  let docs = 0;
  let design = 0;
  let attachments = 0;
  let lastId: string | undefined;
  for await (const lines of exportLines(artifact, what)) {
    for (const line of lines) {
      lineNo += 1;
      if (line === '') continue;
      let doc: { _id?: unknown; _rev?: unknown; _revisions?: { start?: unknown; ids?: unknown }; _attachments?: Record<string, unknown> };
      try {
        doc = JSON.parse(line) as typeof doc;
      } catch {
        throw new UserError(`${what}: line ${lineNo} is not JSON`);
      }
      if (typeof doc !== 'object' || doc === null || typeof doc._id !== 'string' || doc._id === '') throw new UserError(`${what}: line ${lineNo} is not a document with an _id`);
      if (typeof doc._rev !== 'string' || !REV.test(doc._rev)) throw new UserError(`${what}: line ${lineNo} (document "${doc._id}") has no valid _rev`);
      const h = doc._revisions;
      if (h !== undefined) {
        const ids = Array.isArray(h.ids) ? (h.ids as unknown[]) : [];
        if (typeof h.start !== 'number' || ids.length === 0 || `${h.start}-${String(ids[0])}` !== doc._rev) {
          throw new UserError(`${what}: line ${lineNo} (document "${doc._id}"): its _revisions history does not end at its _rev ${doc._rev}`);
        }
      }
      revisions += 1;
      if (doc._id !== lastId) {
        docs += 1;
        if (doc._id.startsWith('_design/')) design += 1;
      }
      lastId = doc._id;
      attachments += doc._attachments ? Object.keys(doc._attachments).length : 0;
    }
  }
  const f = manifest.facts;
  if (typeof f.doc_count === 'number' && f.doc_count !== docs) throw new UserError(`${what}: ${docs} documents in the export, the manifest recorded ${f.doc_count}`);
  if (typeof f.revision_count === 'number' && f.revision_count !== revisions) {
    throw new UserError(`${what}: ${revisions} revisions in the export, the manifest recorded ${f.revision_count}`);
  }
  const db = typeof f.database === 'string' ? ` of database "${f.database}"` : '';
  return [`couchdb export${db}: ${docs} documents, ${revisions} revisions (conflicts included), ${design} design documents, ${attachments} attachments`];
}
