import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { startCouch, type CouchServer } from './helpers/couch-server.js';
import { freePort } from './helpers/postgres-server.js';
import { BIN, bkp, lastLine, tempDir } from './helpers/cli.js';
import { ArrayElementSplitter } from '../src/providers/couchdb/json-rows.js';
import { plainLine } from '../src/providers/couchdb/export.js';

// The couchdb engine's data path (issue 4): exports with revision histories, conflicts and
// attachments, restore with _bulk_docs new_edits:false, verify --deep, --from-replica and
// hooks.after_restore, through the real CLI against CouchDB-compatible servers the test starts
// (test/helpers/couch-server.ts; a real CouchDB with BKP_TEST_COUCHDB_URL).

interface Doc {
  _id: string;
  _rev: string;
  _revisions?: { start: number; ids: string[] };
  _conflicts?: string[];
  _attachments?: Record<string, { data?: string; digest?: string; content_type?: string; revpos?: number }>;
  [k: string]: unknown;
}

async function couch<T = Record<string, unknown>>(server: CouchServer, method: string, p: string, body?: unknown): Promise<{ status: number; json: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (server.authorization) headers.authorization = server.authorization;
  const res = await fetch(`${server.origin}/${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as T };
}

async function put(server: CouchServer, p: string, body: unknown): Promise<string> {
  const r = await couch<{ rev?: string; error?: string; reason?: string }>(server, 'PUT', p, body);
  if (r.status >= 300) throw new Error(`PUT ${p}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.rev!;
}

const ATTACHMENT = randomBytes(5000);
const CONFLICT_ATTACHMENT = randomBytes(3000);

/**
 * A database with what an export must carry: a document with three revisions, a conflict (one
 * leaf with its own attachment), an updated document with a binary attachment, a design document
 * whose validate_doc_update rejects documents without `type`, older documents without `type`
 * (written before the design document existed), a deleted document, and plain events.
 */
async function seedDevices(server: CouchServer, db: string): Promise<void> {
  await put(server, db, undefined);
  await put(server, `${db}/legacy`, { note: 'written before the validation existed' });
  let rev = await put(server, `${db}/multi`, { type: 'device', v: 1 });
  rev = await put(server, `${db}/multi`, { _rev: rev, type: 'device', v: 2 });
  await put(server, `${db}/multi`, { _rev: rev, type: 'device', v: 3 });
  const c1 = await put(server, `${db}/conflicted`, { type: 'device', side: 'start' });
  await put(server, `${db}/conflicted`, { _rev: c1, type: 'device', side: 'here' });
  // A second branch from the first revision, as a replication from another writer brings it.
  const w = await couch<unknown[]>(server, 'POST', `${db}/_bulk_docs`, {
    new_edits: false,
    docs: [
      {
        _id: 'conflicted',
        _rev: '2-b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0',
        type: 'device',
        side: 'there',
        _revisions: { start: 2, ids: ['b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0', c1.slice(2)] },
        _attachments: { 'other.bin': { content_type: 'application/octet-stream', data: CONFLICT_ATTACHMENT.toString('base64') } },
      },
    ],
  });
  expect(w.status).toBe(201);
  expect(w.json).toEqual([]);
  // After the conflict: with a validate_doc_update in place, PouchDB servers replace the
  // `_revisions` of a new_edits:false write with the current winner's (pouchdb-validation).
  await put(server, `${db}/_design/app`, {
    views: { by_type: { map: 'function (doc) { if (doc.type) emit(doc.type, 1); }' } },
    validate_doc_update: "function (newDoc) { if (!newDoc._deleted && !newDoc.type && newDoc._id.indexOf('_design/') !== 0) throw({ forbidden: 'type required' }); }",
  });
  const a1 = await put(server, `${db}/with-attachment`, { type: 'device', _attachments: { 'blob.bin': { content_type: 'application/octet-stream', data: ATTACHMENT.toString('base64') } } });
  const stubs = (await couch<Doc>(server, 'GET', `${db}/with-attachment`)).json._attachments;
  await put(server, `${db}/with-attachment`, { _rev: a1, type: 'device', renamed: true, _attachments: stubs });
  const d = await put(server, `${db}/gone`, { type: 'device' });
  expect((await couch(server, 'DELETE', `${db}/gone?rev=${d}`)).status).toBe(200);
  const events = Array.from({ length: 20 }, (_, i) => ({ _id: `ev-${String(i).padStart(2, '0')}`, type: 'event', n: i }));
  expect((await couch(server, 'POST', `${db}/_bulk_docs`, { docs: events })).status).toBe(201);
}

/** Documents (legacy, design, multi, conflicted, with-attachment, 20 events) and leaf revisions. */
const DEVICES_DOCS = 25;
const DEVICES_REVISIONS = 26;

/**
 * Every live document with its history, conflicts and attachments, and each conflicting leaf.
 * PouchDB servers set an attachment's `revpos` to the document's generation when it is written
 * with `new_edits: false` (Apache CouchDB keeps the one given): compared only on a real CouchDB.
 */
async function snapshot(server: CouchServer, db: string): Promise<Record<string, Doc>> {
  const ids = (await couch<{ rows: { id: string }[] }>(server, 'GET', `${db}/_all_docs`)).json.rows.map((r) => r.id);
  const out: Record<string, Doc> = {};
  for (const id of ids) {
    const p = `${db}/${id.startsWith('_design/') ? `_design/${encodeURIComponent(id.slice(8))}` : encodeURIComponent(id)}`;
    const doc = (await couch<Doc>(server, 'GET', `${p}?revs=true&conflicts=true&attachments=true`)).json;
    out[id] = doc;
    for (const rev of doc._conflicts ?? []) out[`${id}@${rev}`] = (await couch<Doc>(server, 'GET', `${p}?rev=${rev}&revs=true&attachments=true`)).json;
  }
  if (!server.real) for (const d of Object.values(out)) for (const a of Object.values(d._attachments ?? {})) delete a.revpos;
  return out;
}

async function attachmentBytes(server: CouchServer, p: string): Promise<Buffer> {
  const res = await fetch(`${server.origin}/${p}`, { headers: server.authorization ? { authorization: server.authorization } : {} });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

function policy(dbs: string[], extra = ''): string {
  return `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  weekly: { cron: "0 3 * * 0", retention: { keep_weekly: 4, keep_on_demand: 5 } }
targets:
  iot:
    engine: couchdb
    url: \${env:COUCH_URL}
    databases: [${dbs.join(', ')}]
    export: true
    schedule: weekly
    hooks:
      after_restore:
        - printf '%s|%s|%s|%s\\n' "$BKP_TARGET" "$BKP_UNIT" "$BKP_RESTORE_DESTINATION" "$BKP_PHASE" >> restored.log
${extra}`;
}

/** The artifacts and manifests of a unit, newest last. */
function backupsOf(dir: string, unit: string): { artifact: string; manifest: { id: string; facts: Record<string, unknown>; size: number; sha256: string } }[] {
  const folder = path.join(dir, 'backups', 'iot', unit);
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((f) => f.endsWith('.manifest.json'))
    .sort()
    .map((f) => ({ artifact: path.join(folder, f.replace(/\.manifest\.json$/, '.ndjson.gz')), manifest: JSON.parse(readFileSync(path.join(folder, f), 'utf8')) as { id: string; facts: Record<string, unknown>; size: number; sha256: string } }));
}

/** Sunday 2026-11-22, after the 03:00 fire of the weekly schedule. */
const SUNDAY = '2026-11-22T04:00:00Z';

describe('couchdb engine: export, restore, verify --deep', () => {
  let src: CouchServer;
  let other: CouchServer;
  // Made in beforeAll, not when the file is collected: a filtered run must not leave it behind.
  let ws: { dir: string; cleanup: () => void };
  let env: Record<string, string>;
  let devices: string;
  let events: string;
  let config: string;
  const everything = (r: { stdout: string; stderr: string }) => r.stdout + r.stderr;

  beforeAll(async () => {
    ws = tempDir('bkp-couch-e2e-');
    config = path.join(ws.dir, 'bkp.yaml');
    [src, other] = await Promise.all([startCouch({ admin: true }), startCouch()]);
    devices = src.db('devices');
    events = src.db('hazardevents');
    await seedDevices(src, devices);
    await put(src, events, undefined);
    await couch(src, 'POST', `${events}/_bulk_docs`, { docs: Array.from({ length: 12 }, (_, i) => ({ _id: `h${i}`, type: 'hazard', level: i % 3 })) });
    env = { COUCH_URL: src.url };
    writeFileSync(config, policy([devices, events]));
  }, 60_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), other?.stop()]);
    ws?.cleanup();
  });

  it('apply exports every database with its revisions, conflicts and attachments, and records the facts', async () => {
    const r = await bkp(['apply', '-c', config, '--auto-approve', '--now', SUNDAY], { env });
    expect(r.code, everything(r)).toBe(0);
    expect(everything(r)).not.toContain(src.admin!.password);

    const [b] = backupsOf(ws.dir, devices);
    expect(b).toBeDefined();
    expect(b!.artifact).toMatch(/Z-[0-9a-f]+\.ndjson\.gz$/);
    expect(b!.manifest.facts).toMatchObject({
      format: 'couchdb-ndjson/1',
      database: devices,
      doc_count: DEVICES_DOCS,
      revision_count: DEVICES_REVISIONS,
      conflicted_docs: 1,
      design_docs: 1,
      attachments: 2,
      source_doc_count: DEVICES_DOCS,
      server: src.origin,
      // Plain NDJSON from the engine, gzip from the storage codec.
      engine_compression: 'none',
    });
    expect((b!.manifest as unknown as { compression: string }).compression).toBe('gzip');
    if (!src.real) expect(b!.manifest.facts).toMatchObject({ server_vendor: 'PouchDB authors', server_version: '4.2.0', update_seq: expect.any(Number) as unknown });
    expect(backupsOf(ws.dir, events)[0]!.manifest.facts).toMatchObject({ doc_count: 12, revision_count: 12 });

    const lines = gunzipSync(readFileSync(b!.artifact)).toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Doc);
    expect(lines).toHaveLength(DEVICES_REVISIONS);
    const multi = lines.find((l) => l._id === 'multi')!;
    expect(multi._revisions!.ids).toHaveLength(3);
    expect(multi.v).toBe(3);
    expect(lines.filter((l) => l._id === 'conflicted').map((l) => l.side).sort()).toEqual(['here', 'there']);
    expect(lines.some((l) => l._id === 'gone')).toBe(false);
    expect(lines.some((l) => '_conflicts' in l)).toBe(false);
    const att = lines.find((l) => l._id === 'with-attachment')!;
    expect(Buffer.from(att._attachments!['blob.bin']!.data!, 'base64').equals(ATTACHMENT)).toBe(true);
    // Every line carries a history ending at its own revision.
    for (const l of lines) expect(`${l._revisions!.start}-${l._revisions!.ids[0]}`).toBe(l._rev);
  });

  it('restores into a fresh database on another server with identical revisions, histories, conflicts and attachment bytes, then runs after_restore', async () => {
    const target = other.db('devices-restored');
    const r = await bkp(['restore', 'iot', '-c', config, '--unit', devices, '--to', `${other.url}/${target}`], { env });
    expect(r.code, everything(r)).toBe(0);
    expect(r.stdout).toContain(`into ${other.origin}/${target}`);
    expect(r.stdout).toContain(`${DEVICES_DOCS} documents of database "${devices}" written with their revision histories (${DEVICES_REVISIONS} revisions`);
    expect(r.stdout).toContain(`document count checked: ${DEVICES_DOCS}, as in the backup`);

    const [before, after] = await Promise.all([snapshot(src, devices), snapshot(other, target)]);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    expect(after).toEqual(before);
    expect(after.conflicted!._conflicts).toHaveLength(1);
    expect(await attachmentBytes(other, `${target}/with-attachment/blob.bin`)).toEqual(ATTACHMENT);
    expect(await attachmentBytes(other, `${target}/conflicted/other.bin?rev=2-b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0`)).toEqual(CONFLICT_ATTACHMENT);
    // The design document came last: its validation is active, yet `legacy` (no type) was restored.
    expect((await couch(other, 'PUT', `${target}/untyped`, { x: 1 })).status).toBe(403);
    expect((await couch(other, 'GET', `${target}/legacy`)).status).toBe(200);
    expect((await couch(other, 'GET', `${target}/gone`)).status).toBe(404);

    expect(readFileSync(path.join(ws.dir, 'restored.log'), 'utf8').trim().split('\n').pop()).toBe(`iot|${devices}|${other.origin}/${target}|after_restore`);
    expect(r.stdout).toContain('after_restore: 1 command ran');
  });

  it('refuses to restore into a database that holds documents without --force; with --force takes a safety backup and replaces them', async () => {
    const target = other.db('devices-restored');
    await put(other, `${target}/extra`, { type: 'device' });
    const refused = await bkp(['restore', 'iot', '-c', config, '--unit', devices, '--to', `${other.url}/${target}`], { env });
    expect(refused.code).toBe(1);
    expect(everything(refused)).toContain(`CouchDB database ${other.origin}/${target} (${DEVICES_DOCS + 1} documents) already holds data and restoring overwrites it: run again with --force (bkp first takes a safety backup)`);
    expect((await couch(other, 'GET', `${target}/extra`)).status).toBe(200);

    const forced = await bkp(['restore', 'iot', '-c', config, '--unit', devices, '--to', `${other.url}/${target}`, '--force'], { env });
    expect(forced.code, everything(forced)).toBe(0);
    expect(forced.stdout).toMatch(new RegExp(`Safety backup [0-9a-f]+ of iot/${target.replace(/[$()+]/g, '\\$&')} taken`));
    expect(forced.stdout).toContain('database deleted and created again');
    expect((await couch(other, 'GET', `${target}/extra`)).status).toBe(404);
    expect(await snapshot(other, target)).toEqual(await snapshot(src, devices));
  });

  it('restores over the source database itself with --force, never showing its credentials', async () => {
    const gone = await couch<Doc>(src, 'GET', `${devices}/ev-07`);
    await couch(src, 'DELETE', `${devices}/ev-07?rev=${gone.json._rev}`);
    await put(src, `${devices}/added-later`, { type: 'device' });
    const r = await bkp(['restore', 'iot', '-c', config, '--unit', devices, '--backup', 'latest', '--force'], { env });
    expect(r.code, everything(r)).toBe(0);
    expect(everything(r)).not.toContain(src.admin!.password);
    expect(r.stdout).toContain(`Restored iot/${devices} backup`);
    expect((await couch(src, 'GET', `${devices}/ev-07`)).status).toBe(200);
    expect((await couch(src, 'GET', `${devices}/added-later`)).status).toBe(404);
  });

  it('verify --deep reads every line of every export and checks the counts', async () => {
    const v = await bkp(['verify', 'iot', '-c', config, '--deep'], { env });
    expect(v.code, everything(v)).toBe(0);
    expect(v.stdout).toContain(`couchdb export of database "${devices}": ${DEVICES_DOCS} documents, ${DEVICES_REVISIONS} revisions (conflicts included), 1 design documents, 2 attachments`);
    expect(v.stdout).toContain(`couchdb export of database "${events}": 12 documents`);
  });

  it('verify --deep names a line that is not a document, in an artifact whose checksum is right', async () => {
    const [b] = backupsOf(ws.dir, events);
    const good = readFileSync(b!.artifact);
    const manifestFile = b!.artifact.replace(/\.ndjson\.gz$/, '.manifest.json');
    const goodManifest = readFileSync(manifestFile, 'utf8');
    try {
      const content = Buffer.from(`{"_id":"h0","_rev":"1-abc"}\n{"_id":"h1"}\n`);
      const bad = gzipSync(content);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      const m = JSON.parse(goodManifest) as Record<string, unknown>;
      writeFileSync(b!.artifact, bad);
      writeFileSync(manifestFile, JSON.stringify({ ...m, size: bad.length, sha256: sha(bad), content_size: content.length, content_sha256: sha(content) }, null, 2));
      const v = await bkp(['verify', 'iot', '-c', config, '--deep'], { env });
      expect(v.code).toBe(1);
      expect(everything(v)).toContain(`backup ${b!.manifest.id}: line 2 (document "h1") has no valid _rev`);
    } finally {
      writeFileSync(b!.artifact, good);
      writeFileSync(manifestFile, goodManifest);
    }
  });

  it('names the missing database and the server', async () => {
    const cfg = path.join(ws.dir, 'missing.yaml');
    writeFileSync(cfg, policy([devices, src.db('nope')]));
    const p = await bkp(['plan', '-c', cfg, '--now', SUNDAY], { env });
    expect(everything(p)).toContain(`target iot: database "${src.db('nope')}" does not exist on CouchDB server ${src.origin}`);
    const a = await bkp(['apply', '-c', cfg, '--auto-approve', '--now', SUNDAY], { env });
    expect(a.code).toBe(1);
    expect(everything(a)).toContain(`database "${src.db('nope')}" does not exist on CouchDB server ${src.origin}`);
  });

  it('names the server on a refused password, without showing either password', async () => {
    const wrong = src.url.replace(encodeURIComponent(src.admin!.password), 'not-the-password');
    const r = await bkp(['backup', 'iot', '-c', config, '--unit', devices], { env: { COUCH_URL: wrong } });
    expect(r.code).toBe(1);
    expect(everything(r)).toContain(`CouchDB server ${src.origin}: the user name or password in the URL was refused (401`);
    expect(everything(r)).not.toContain('not-the-password');
    expect(everything(r)).not.toContain(src.admin!.password);
  });

  it('names an unreachable server, quickly', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await bkp(['backup', 'iot', '-c', config, '--unit', devices], { env: { COUCH_URL: dead } });
    expect(r.code).toBe(1);
    expect(everything(r)).toContain(`target iot: database "${devices}" on CouchDB server ${dead}: GET /${devices}: unreachable: connection refused`);
  });
});

describe('couchdb engine: restore --from-replica', () => {
  let src: CouchServer;
  let replica: CouchServer;
  let ws: { dir: string; cleanup: () => void };
  let config: string;
  let env: Record<string, string>;
  let db: string;

  beforeAll(async () => {
    ws = tempDir('bkp-couch-replica-');
    config = path.join(ws.dir, 'bkp.yaml');
    [src, replica] = await Promise.all([startCouch({ admin: true }), startCouch()]);
    db = src.db('hazardevents');
    await put(src, db, undefined);
    await couch(src, 'POST', `${db}/_bulk_docs`, { docs: Array.from({ length: 15 }, (_, i) => ({ _id: `h${i}`, type: 'hazard' })) });
    // The replica "in another region", made by hand as the runbook's replication task would.
    const rep = await couch(src, 'POST', '_replicate', { source: `${src.url}/${db}`, target: `${replica.url}/${replica.db('hazardevents')}`, create_target: true });
    expect(rep.status).toBe(200);
    env = { COUCH_URL: src.url, REPLICA_URL: replica.url };
    writeFileSync(config, policy([db], '    replicate_to: ${env:REPLICA_URL}\n'));
  }, 60_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), replica?.stop()]);
    ws?.cleanup();
  });

  // With BKP_TEST_COUCHDB_URL, "source" and "replica" are one server and the replica's database
  // carries another prefix than the source's: replicate_to/<db> cannot name it, so these skip.
  it('replicates the replica back into a lost database, then runs after_restore', async () => {
    if (src.real) return;
    expect((await couch(src, 'DELETE', db)).status).toBe(200);
    const r = await bkp(['restore', 'iot', '-c', config, '--unit', db, '--from-replica'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Restored iot/${db} from its replica into ${src.origin}/${db}`);
    expect(r.stdout).toContain(`replicated from ${replica.origin}/${db}: 15 documents read, 15 written`);
    expect(r.stdout).toContain('the database now holds 15 documents (the replica holds 15)');
    expect(r.stdout + r.stderr).not.toContain(src.admin!.password);
    expect((await couch<{ doc_count: number }>(src, 'GET', db)).json.doc_count).toBe(15);
    expect(readFileSync(path.join(ws.dir, 'restored.log'), 'utf8').trim()).toBe(`iot|${db}|${src.origin}/${db}|after_restore`);
  });

  it('needs --force to replicate into a database that holds documents, and takes a safety backup first', async () => {
    if (src.real) return;
    await put(src, `${db}/local-only`, { type: 'hazard' });
    const refused = await bkp(['restore', 'iot', '-c', config, '--unit', db, '--from-replica'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stdout + refused.stderr).toContain(`CouchDB database ${src.origin}/${db} (16 documents) already holds data and replicating into it merges the replica's documents into it: run again with --force`);
    const forced = await bkp(['restore', 'iot', '-c', config, '--unit', db, '--from-replica', '--force'], { env });
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/Safety backup [0-9a-f]+ of iot\/\S+ taken/);
    expect(forced.stdout).toMatch(/no changes|\d+ documents read, 0 written/);
    expect((await couch(src, 'GET', `${db}/local-only`)).status).toBe(200);
  });

  it('explains what is missing: a replica, or a couchdb target', async () => {
    const noReplica = path.join(ws.dir, 'no-replica.yaml');
    writeFileSync(noReplica, policy([db]));
    const r = await bkp(['restore', 'iot', '-c', noReplica, '--unit', db, '--from-replica'], { env });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('--from-replica: target iot has no replicate_to: there is no replica to restore from');

    const files = path.join(ws.dir, 'files.yaml');
    writeFileSync(files, `version: 1
storage:
  local: { type: local, path: ./backups }
targets:
  app: { engine: files, paths: [./data], schedule: { cron: "0 3 * * *", retention: { keep_daily: 3 } } }
`);
    const f = await bkp(['restore', 'app', '-c', files, '--from-replica']);
    expect(f.code).toBe(1);
    expect(f.stdout + f.stderr).toContain('--from-replica: target app is a files target; only couchdb targets restore from a replica');
  });
});

/** Runs the CLI and returns its peak RSS in bytes (process.resourceUsage, read as it exits). */
function bkpPeakRss(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; out: string; rss: number }> {
  const rssFile = path.join(cwd, `rss-${process.hrtime.bigint()}`);
  const hook = `data:text/javascript,${encodeURIComponent('import { writeFileSync } from "node:fs"; process.on("exit", () => writeFileSync(process.env.BKP_TEST_RSS_FILE, String(process.resourceUsage().maxRSS)));')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', hook, BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', BKP_NOW: undefined, ...env, BKP_TEST_RSS_FILE: rssFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const rss = Number(readFileSync(rssFile, 'utf8')) * 1024;
      rmSync(rssFile, { force: true });
      resolve({ code: code ?? -1, out, rss });
    });
  });
}

describe('couchdb engine: memory', () => {
  let server: CouchServer;
  let ws: { dir: string; cleanup: () => void };
  const DOCS = 20_000;
  const BODY = 10_000;

  beforeAll(async () => {
    ws = tempDir('bkp-couch-mem-');
    server = await startCouch();
    const db = server.db('big');
    await put(server, db, undefined);
    for (let i = 0; i < DOCS; i += 1000) {
      const docs = Array.from({ length: 1000 }, (_, j) => ({ _id: `ev-${String(i + j).padStart(6, '0')}`, type: 'event', text: `${i + j} `.repeat(BODY / 4).slice(0, BODY) }));
      expect((await couch(server, 'POST', `${db}/_bulk_docs`, { docs })).status).toBe(201);
    }
    writeFileSync(path.join(ws.dir, 'bkp.yaml'), policy([db]));
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    ws?.cleanup();
  });

  it('exports a database about 100 times its page size with a peak RSS growth far below the data size', async () => {
    const env = { COUCH_URL: server.url };
    // The same process, the same modules and a request to the server, but no export: the floor.
    const floor = await bkpPeakRss(['plan', '-c', 'bkp.yaml', '--now', SUNDAY], env, ws.dir);
    expect(floor.code, floor.out).toBe(0);
    const run = await bkpPeakRss(['backup', 'iot', '-c', 'bkp.yaml'], env, ws.dir);
    expect(run.code, run.out).toBe(0);
    const [b] = backupsOf(ws.dir, server.db('big'));
    expect(b!.manifest.facts.doc_count).toBe(DOCS);
    const data = gunzipSync(readFileSync(b!.artifact)).length;
    const growth = run.rss - floor.rss;
    console.log(`couchdb export memory: ${(data / 2 ** 20).toFixed(0)} MiB of NDJSON; peak RSS ${(run.rss / 2 ** 20).toFixed(0)} MiB (plan: ${(floor.rss / 2 ** 20).toFixed(0)} MiB, growth ${(growth / 2 ** 20).toFixed(0)} MiB)`);
    expect(data).toBeGreaterThan(190 * 2 ** 20);
    expect(growth).toBeLessThan(data / 2);
    expect(lastLine(run.out)).toMatch(/Resources: 1 created/);
  }, 180_000);
});

describe('couchdb export: cutting _all_docs answers into rows', () => {
  const answer = `{"total_rows":3,"offset":0,"rows":[\r\n{"id":"a","key":"a","value":{"rev":"1-aa"},"doc":{"_id":"a","_rev":"1-aa","s":"q\\"}]{[,\\\\","u":"é€😀"}},\r\n{"id":"b","key":"b","value":{"rev":"2-bb"},"doc":{"_id":"b","_rev":"2-bb","n":[1,{"x":[]}]}},\r\n{"id":"c\\\\","key":"c\\\\","value":{"rev":"1-cc"},"doc":{"_id":"c\\\\","_rev":"1-cc","_conflicts":["1-dd"]}}\r\n],"update_seq":"9-x"}`;
  const expected = JSON.parse(answer).rows as unknown[];

  it('gives each row whole, wherever the chunks are cut (strings, escapes and multi-byte characters included)', () => {
    const bytes = Buffer.from(answer, 'utf8');
    for (let cut = 1; cut < bytes.length; cut++) {
      for (const size of [1, 7]) {
        const s = new ArrayElementSplitter();
        const rows: string[] = [];
        rows.push(...s.push(bytes.subarray(0, cut)));
        for (let i = cut; i < bytes.length; i += size) rows.push(...s.push(bytes.subarray(i, Math.min(bytes.length, i + size))));
        expect(rows.map((r) => JSON.parse(r) as unknown)).toEqual(expected);
        expect(s.complete).toBe(true);
      }
    }
  });

  it('writes a plain first revision by text, and leaves anything else to the parser', () => {
    const rows = new ArrayElementSplitter().push(Buffer.from(answer));
    const plain = plainLine(rows[0]!);
    expect(JSON.parse(plain!)).toEqual({ ...(expected[0] as { doc: object }).doc, _revisions: { start: 1, ids: ['aa'] } });
    expect(plainLine(rows[1]!)).toBeUndefined(); // second generation: its history is fetched
    expect(plainLine(rows[2]!)).toBeUndefined(); // a conflict
    expect(plainLine('{"id":"_design/x","key":"_design/x","value":{"rev":"1-ab"},"doc":{"_id":"_design/x","_rev":"1-ab"}}')).toBeUndefined();
    expect(plainLine('{"id":"x","key":"x","value":{"rev":"1-ab"},"doc":{"_id":"x","_rev":"1-ab","_attachments":{}}}')).toBeUndefined();
    expect(plainLine('{ "id": "x", "key": "x", "value": {"rev": "1-ab"}, "doc": {"_id": "x", "_rev": "1-ab"}}')).toBeUndefined();
  });
});
