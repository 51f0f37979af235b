import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCouch, type CouchServer } from './helpers/couch-server.js';

/**
 * The CouchDB-compatible test server (test/helpers/couch-server.ts) does what the couchdb engine
 * and its tests rely on. Where express-pouchdb differs from Apache CouchDB, the test says how
 * (`server.real` is true with BKP_TEST_COUCHDB_URL):
 * - `GET /` answers `{"express-pouchdb": "Welcome!", "version": "4.2.0", "vendor": {"name":
 *   "PouchDB authors"}}`, not `{"couchdb": "Welcome", "version": "3.x"}`;
 * - no `_scheduler/docs` (404): replication state is only in the `_replicator` document's
 *   `_replication_state` (`triggered` while running, `completed`, `error`),
 *   `_replication_state_time` (ISO string) and `_replication_state_reason`, plus
 *   `_replication_stats` and a `_replication_id` (a random UUID) written into the document;
 * - sequences (`update_seq`, `_changes` seq and last_seq) are integers, not opaque strings;
 * - `_bulk_get` with `{id}` only gives the winning revision (CouchDB: every leaf), and a missing
 *   revision comes back as `{}` or `{"missing": rev}` instead of `{"error": {…}}`;
 * - `_all_docs` takes `startkey` and `start_key`; its `offset` is 0 after a `startkey`;
 * - an attachment stub kept across an update must carry its `content_type` and `digest`
 *   (`{"stub": true}` alone is "missing_stub"; CouchDB takes it);
 * - admin party unless started with `{ admin: true }`; even then, anyone may read and write
 *   existing databases (CouchDB 3 keeps databases admin-only by default); a wrong password is
 *   401 as in CouchDB;
 * - a `_replicator` document may be updated (the task runs again) or deleted once completed or
 *   failed, but while `triggered` (a continuous task) an update is refused 403 ("Only the
 *   replicator can edit replication documents that are in the triggered state"); deleting works.
 */

interface Answer<T> {
  status: number;
  body: T;
}

async function call<T = Record<string, unknown>>(server: CouchServer, method: string, path: string, body?: unknown): Promise<Answer<T>> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (server.authorization) headers.authorization = server.authorization;
  const res = await fetch(`${server.origin}/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface ReplicatorDoc {
  _id: string;
  _rev: string;
  _replication_state?: string;
  _replication_state_time?: string;
  _replication_state_reason?: string;
  _replication_stats?: { docs_written?: number };
  [k: string]: unknown;
}

describe('the CouchDB-compatible test server', () => {
  let a: CouchServer;
  let b: CouchServer;
  beforeAll(async () => {
    [a, b] = await Promise.all([startCouch(), startCouch()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('runs two separate servers at once', async () => {
    const db = a.db('only-on-a');
    expect((await call(a, 'PUT', db)).status).toBe(201);
    expect((await call(b, 'GET', db)).status).toBe(404);
    const root = await call<{ couchdb?: string; 'express-pouchdb'?: string; vendor?: { name?: string } }>(a, 'GET', '');
    if (a.real) expect(root.body.couchdb).toBe('Welcome');
    else expect(root.body).toMatchObject({ 'express-pouchdb': 'Welcome!', vendor: { name: 'PouchDB authors' } });
  });

  it('stores documents, revisions and attachments, and pages _all_docs with startkey and start_key', async () => {
    const db = a.db('docs');
    await call(a, 'PUT', db);
    const docs = Array.from({ length: 5 }, (_, i) => ({ _id: `d${i}`, n: i }));
    expect((await call(a, 'POST', `${db}/_bulk_docs`, { docs })).status).toBe(201);
    const first = await call<{ rev: string }>(a, 'PUT', `${db}/att`, { _attachments: { 'hello.txt': { content_type: 'text/plain', data: Buffer.from('hello').toString('base64') } } });
    // Kept across an update as a stub, as read back (with its digest: see above).
    const stored = await call<{ _attachments: Record<string, unknown> }>(a, 'GET', `${db}/att?rev=${first.body.rev}`);
    const second = await call<{ rev: string }>(a, 'PUT', `${db}/att`, { _rev: first.body.rev, v: 2, _attachments: stored.body._attachments });
    expect(second.body.rev).toMatch(/^2-/);
    const bytes = await fetch(`${a.origin}/${db}/att/hello.txt`, { headers: a.authorization ? { authorization: a.authorization } : {} });
    expect(Buffer.from(await bytes.arrayBuffer()).toString()).toBe('hello');

    for (const param of ['startkey', 'start_key']) {
      const page = await call<{ rows: { id: string }[] }>(a, 'GET', `${db}/_all_docs?limit=3&${param}=${encodeURIComponent('"d2"')}`);
      expect(page.body.rows.map((r) => r.id)).toEqual(['d2', 'd3', 'd4']);
    }
    const full = await call<{ rows: { doc: { _attachments?: Record<string, { data?: string; revpos?: number }> } }[] }>(a, 'GET', `${db}/_all_docs?include_docs=true&attachments=true&conflicts=true&keys=${encodeURIComponent('["att"]')}`);
    expect(full.body.rows[0]!.doc._attachments!['hello.txt']).toMatchObject({ data: Buffer.from('hello').toString('base64'), revpos: 1 });
  });

  it('keeps revisions and conflicts written with _bulk_docs new_edits:false, and answers _bulk_get with histories', async () => {
    const db = a.db('revs');
    await call(a, 'PUT', db);
    const docs = [
      { _id: 'x', _rev: '3-c', v: 3, _revisions: { start: 3, ids: ['c', 'b', 'a'] } },
      { _id: 'x', _rev: '2-z', v: 'other', _revisions: { start: 2, ids: ['z', 'a'] } },
    ];
    const w = await call<unknown[]>(a, 'POST', `${db}/_bulk_docs`, { docs, new_edits: false });
    expect(w.status).toBe(201);
    expect(w.body).toEqual([]);
    const doc = await call<{ _rev: string; _conflicts?: string[] }>(a, 'GET', `${db}/x?conflicts=true`);
    expect(doc.body._rev).toBe('3-c');
    expect(doc.body._conflicts).toEqual(['2-z']);

    const got = await call<{ results: { id: string; docs: { ok?: { _rev: string; _revisions: unknown }; error?: unknown; missing?: string }[] }[] }>(a, 'POST', `${db}/_bulk_get?revs=true`, {
      docs: [{ id: 'x', rev: '2-z' }, { id: 'x', rev: '3-c' }, { id: 'x', rev: '9-nope' }],
    });
    const oks = got.body.results.flatMap((r) => r.docs.flatMap((d) => (d.ok ? [d.ok] : [])));
    expect(oks.map((d) => [d._rev, d._revisions]).sort()).toEqual([
      ['2-z', { start: 2, ids: ['z', 'a'] }],
      ['3-c', { start: 3, ids: ['c', 'b', 'a'] }],
    ]);
    const missing = got.body.results.flatMap((r) => r.docs.filter((d) => !d.ok));
    if (a.real) expect(missing[0]).toMatchObject({ error: { error: 'not_found' } });
    else expect(missing[0]).toEqual({ missing: '9-nope' });

    // `{id}` alone: every leaf on Apache CouchDB, the winner only here.
    const byId = await call<{ results: { docs: { ok?: { _rev: string } }[] }[] }>(a, 'POST', `${db}/_bulk_get?revs=true`, { docs: [{ id: 'x' }] });
    const revs = byId.body.results.flatMap((r) => r.docs.flatMap((d) => (d.ok ? [d.ok._rev] : []))).sort();
    expect(revs).toEqual(a.real ? ['2-z', '3-c'] : ['3-c']);
  });

  it('numbers changes with integers (Apache CouchDB 2+: opaque strings)', async () => {
    const db = a.db('seqs');
    await call(a, 'PUT', db);
    await call(a, 'PUT', `${db}/one`, { v: 1 });
    const info = await call<{ update_seq: unknown }>(a, 'GET', db);
    const changes = await call<{ results: { id: string; seq: unknown; changes: { rev: string }[] }[]; last_seq: unknown }>(a, 'GET', `${db}/_changes?style=all_docs`);
    expect(changes.body.results.map((r) => r.id)).toEqual(['one']);
    if (a.real) {
      expect(typeof info.body.update_seq).toBe('string');
      expect(typeof changes.body.last_seq).toBe('string');
    } else {
      expect(info.body.update_seq).toBe(1);
      expect(changes.body.last_seq).toBe(1);
      expect(changes.body.results[0]!.seq).toBe(1);
    }
  });

  it('runs a one-shot _replicator document to the OTHER server, and lets it be updated and deleted once completed', async () => {
    const src = a.db('events');
    const dst = b.db('events-copy');
    await call(a, 'PUT', src);
    await call(a, 'POST', `${src}/_bulk_docs`, { docs: [{ _id: 'e1' }, { _id: 'e2' }, { _id: 'e3' }] });
    const id = a.db('rep-events');
    const put = await call<{ rev: string }>(a, 'PUT', `_replicator/${id}`, { source: `${a.url}/${src}`, target: `${b.url}/${dst}`, create_target: true });
    expect(put.status).toBe(201);

    const done = await waitFor('the replication to complete', async () => {
      const d = await call<ReplicatorDoc>(a, 'GET', `_replicator/${id}`);
      return d.body._replication_state === 'completed' ? d.body : undefined;
    });
    // It reached the other server, not a local database named after the URL (DESIGN §8).
    expect((await call<{ doc_count: number }>(b, 'GET', dst)).body.doc_count).toBe(3);
    expect((await call(a, 'GET', dst)).status).toBe(404);
    expect(done._replication_state_time).toEqual(expect.any(String));
    if (!a.real) {
      expect(done._replication_stats).toMatchObject({ docs_written: 3 });
      expect(done._replication_id).toEqual(expect.any(String));
    }

    const scheduler = await call<{ docs?: { doc_id: string; state: string }[] }>(a, 'GET', '_scheduler/docs/_replicator');
    if (a.real) expect(scheduler.body.docs?.find((d) => d.doc_id === id)?.state).toBe('completed');
    else expect(scheduler.status).toBe(404);

    // Updated: the task runs again (the new document goes through triggered → completed).
    await call(a, 'POST', `${src}/_bulk_docs`, { docs: [{ _id: 'e4' }] });
    const { _replication_state: _s, _replication_state_time: _t, _replication_stats: _st, _replication_id: _i, ...spec } = done;
    const rerun = await call(a, 'PUT', `_replicator/${id}`, { ...spec, note: 'rerun' });
    expect(rerun.status).toBe(201);
    await waitFor('the rerun to complete', async () => {
      const d = await call<ReplicatorDoc>(a, 'GET', `_replicator/${id}`);
      return d.body._replication_state === 'completed' && d.body.note === 'rerun' ? d.body : undefined;
    });
    expect((await call<{ doc_count: number }>(b, 'GET', dst)).body.doc_count).toBe(4);

    const latest = await call<ReplicatorDoc>(a, 'GET', `_replicator/${id}`);
    expect((await call(a, 'DELETE', `_replicator/${id}?rev=${latest.body._rev}`)).status).toBe(200);
    expect((await call(a, 'GET', `_replicator/${id}`)).status).toBe(404);
  });

  it('reports a failed replication in the document (error and reason) without dying', async () => {
    const id = a.db('rep-broken');
    // The other server refuses to create a database for an anonymous user once it has an admin;
    // with no admin, a source that does not exist fails the same way.
    const c = await startCouch({ admin: true });
    try {
      await call(a, 'PUT', `_replicator/${id}`, { source: `${a.url}/${a.db('does-not-exist')}`, target: `${c.origin}/${c.db('nowhere')}`, create_target: true });
      const failed = await waitFor('the replication to fail', async () => {
        const d = await call<ReplicatorDoc>(a, 'GET', `_replicator/${id}`);
        const state = d.body._replication_state;
        return state === 'error' || state === 'failed' || state === 'crashing' ? d.body : undefined;
      });
      if (!a.real) {
        expect(failed._replication_state).toBe('error');
        expect(failed._replication_state_reason).toEqual(expect.any(String));
      }
      // Still answering.
      expect((await call(a, 'GET', '')).status).toBe(200);
      await call(a, 'DELETE', `_replicator/${id}?rev=${failed._rev}`);
    } finally {
      await c.stop();
    }
  });

  it('refuses a wrong password with 401 once it has an admin, and names the server in _session', async () => {
    const c = await startCouch({ admin: true });
    try {
      expect(c.url).toContain(`${encodeURIComponent(c.admin!.username)}:`);
      const wrong = `Basic ${Buffer.from(`${c.admin!.username}:wrong-password`).toString('base64')}`;
      const res = await fetch(`${c.origin}/_all_dbs`, { headers: { authorization: wrong } });
      expect(res.status).toBe(401);
      const ok = await call<{ userCtx: { name: string; roles: string[] } }>(c, 'GET', '_session');
      expect(ok.body.userCtx).toMatchObject({ name: c.admin!.username, roles: expect.arrayContaining(['_admin']) as unknown });
      if (!c.real) {
        // Creating a database needs the admin; reading an existing one does not (unlike CouchDB 3).
        expect((await fetch(`${c.origin}/anon`, { method: 'PUT' })).status).toBe(401);
      }
    } finally {
      await c.stop();
    }
  });

  it('answers POST /_replicate synchronously with the counts at the top level (CouchDB: in history[0])', async () => {
    const src = b.db('back-src');
    await call(b, 'PUT', src);
    await call(b, 'POST', `${src}/_bulk_docs`, { docs: [{ _id: 'r1' }, { _id: 'r2' }] });
    const dst = a.db('back-dst');
    const r = await call<{ ok: boolean; docs_written?: number; history?: { docs_written?: number }[] }>(a, 'POST', '_replicate', { source: `${b.url}/${src}`, target: `${a.url}/${dst}`, create_target: true });
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(true);
    expect(r.body.docs_written ?? r.body.history?.[0]?.docs_written).toBe(2);
    expect((await call<{ doc_count: number }>(a, 'GET', dst)).body.doc_count).toBe(2);
  });

  it('is gone after stop()', async () => {
    const c = await startCouch();
    await c.stop();
    if (!c.real) await expect(fetch(`${c.origin}/`)).rejects.toThrow();
  });
});
