import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Binary, EJSON, ObjectId, type Document } from 'bson';
import { MongoClient } from 'mongodb';
import { startMongoWireServer, type MongoWireServer } from './helpers/mongo-wire-server.js';
import { buildArchive, gzipArchive, crc64, type ArchiveOptions } from './helpers/mongo-archive.js';
import { bkp, ROOT, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';
import { ArchiveScanner, Crc64, scanGzippedArchive } from '../src/providers/mongodb/archive.js';
import { Readable } from 'node:stream';

/**
 * The MongoDB engine. No MongoDB server or Database Tools can be installed on the test machines,
 * so the first block runs against DOUBLES (DESIGN §8): a wire-protocol server
 * (test/helpers/mongo-wire-server.ts) that the real `mongodb` driver talks to, and stand-in
 * `mongodump`/`mongorestore` executables (test/helpers/bin/) that check and record their
 * arguments, stream a fixture archive, and write restored documents back through the driver.
 * The second block runs the same scenario against a real server and the real tools when
 * BKP_TEST_MONGO_URL is set, and is reported as skipped when it is not.
 */

const PASSWORD = 'hearth-Pw:with/odd@chars';
/** As a connection string needs it, and so as the variable holds it. */
const ENCODED = encodeURIComponent(PASSWORD);
const BIN = path.join(ROOT, 'test', 'helpers', 'bin');

/** The database the scenario backs up: documents of several BSON types, an empty collection and a view. */
function hearthData(): Record<string, Document[]> {
  const patients = Array.from({ length: 10 }, (_, i) => ({
    _id: new ObjectId(),
    name: `patient ${i}`,
    born: new Date(Date.UTC(1980 + i, i % 12, 1 + i)),
    tags: ['opencrvs', i % 2 ? 'odd' : 'even'],
    photo: new Binary(randomBytes(64 + i)),
  }));
  const encounters = Array.from({ length: 25 }, (_, i) => ({
    _id: new ObjectId(),
    patient: patients[i % 10]!._id,
    at: new Date(Date.UTC(2026, 10, 1 + (i % 20), i % 24)),
    vitals: { pulse: 60 + i, temperature: 36.5 + i / 10 },
    notes: 'n'.repeat(i * 40),
  }));
  return { encounters, patients, tasks: [] };
}
const HEARTH_VIEWS = { recent_patients: 'patients' };

function openhimData(): Record<string, Document[]> {
  return { transactions: Array.from({ length: 7 }, (_, i) => ({ _id: new ObjectId(), status: i % 3 ? 'Successful' : 'Failed', n: i })) };
}

function countsOf(data: Record<string, Document[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.length]));
}

/** Documents as comparable text: relaxed Extended JSON, sorted by _id, per collection. */
function canonical(data: Record<string, Document[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, docs] of Object.entries(data)) out[name] = docs.map((d) => EJSON.stringify(d, { relaxed: true })).sort();
  return out;
}

interface Invocation {
  tool: 'mongodump' | 'mongorestore';
  argv: string[];
  config: { path: string; mode: string; content: string };
  uri: string;
  streamed?: { bytes: number; sha256: string };
  stdin?: { bytes: number; sha256: string };
  written?: Record<string, number>;
}

/** What the scenario needs from a server: the double, or a real one. */
interface Backend {
  /** The policy's `uri:` line value. */
  uriYaml: string;
  /** Where restores land, as bkp prints it: `127.0.0.1:PORT`. */
  where: string;
  /** Environment for bkp (PATH for the tools, secrets). */
  env: Record<string, string>;
  /** Database names: the real server gets a unique prefix so runs never collide. */
  db: (base: string) => string;
  seed: (db: string, data: Record<string, Document[]>, views?: Record<string, string>, archive?: ArchiveOptions) => Promise<void>;
  documents: (db: string) => Promise<Record<string, Document[]>>;
  /** Only with the doubles: what the stand-in tools were given. */
  double?: { server: MongoWireServer; invocations: () => Invocation[]; fixtures: string };
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function policyFor(b: Backend, extra = ''): string {
  return `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly: { cron: "0 23 * * *", retention: { keep_daily: 6, keep_weekly: 4, keep_on_demand: 4 } }
targets:
  hearth:
    engine: mongodb
    uri: "${b.uriYaml}"
    databases: [${b.db('hearth')}, ${b.db('openhim')}]
    connect_timeout: 5
    schedule: nightly
${extra}`;
}

function manifests(dir: string): Document[] {
  return filesUnder(dir)
    .filter((f) => f.endsWith('.manifest.json'))
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Document);
}

/** The scenario both blocks run: back up, verify, restore elsewhere, restore over with --force, fail clearly. */
function scenario(backend: () => Backend) {
  // Made in beforeAll, not while collecting: a skipped block must leave no folder behind.
  let t: { dir: string; cleanup: () => void };
  let config: string;
  let b: Backend;
  let original: Record<string, Document[]>;
  beforeAll(() => {
    t = tempDir('bkp-mongo-test-');
    config = path.join(t.dir, 'bkp.yaml');
    b = backend();
  });
  afterAll(() => t?.cleanup());

  it('backs up each database with mongodump --archive --gzip, streamed into storage, with per-collection counts in the manifest', async () => {
    original = hearthData();
    await b.seed(b.db('hearth'), original, HEARTH_VIEWS);
    await b.seed(b.db('openhim'), openhimData());
    writeFileSync(config, policyFor(b));

    const a = await bkp(['apply', '-c', config, '--auto-approve', '--now', '2026-11-21T23:05:00Z'], { env: b.env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout + a.stderr).not.toContain(PASSWORD);
    expect(a.stdout + a.stderr).not.toContain(ENCODED);
    const dir = path.join(t.dir, 'backups', 'hearth', b.db('hearth'));
    const files = filesUnder(dir);
    expect(files).toEqual([expect.stringMatching(/^20261121T230500Z-[0-9a-f]{12}\.archive\.gz$/), expect.stringMatching(/^20261121T230500Z-[0-9a-f]{12}\.manifest\.json$/)]);
    const [m] = manifests(dir);
    expect(m).toMatchObject({
      engine: 'mongodb',
      unit: b.db('hearth'),
      compression: 'none',
      facts: {
        database: b.db('hearth'),
        format: 'mongodump-archive',
        archive_version: '0.1',
        engine_compression: 'gzip',
        collections: 3,
        documents: 35,
        document_counts: countsOf(original),
        server_document_counts: countsOf(original),
        views: ['recent_patients'],
      },
    });
    expect(m!.facts.server_version).toMatch(/^\d+\.\d+\.\d+/);
    expect(m!.facts.mongodump_version).toMatch(/^\d+\.\d+\.\d+/);
    const artifact = readFileSync(path.join(dir, m!.artifact as string));
    expect(sha256(artifact)).toBe(m!.sha256);
    // What landed is mongodump's gzipped archive, byte for byte: gzip, then the archive's magic.
    expect(artifact.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gunzipSync(artifact).readUInt32LE(0)).toBe(0x8199e26d);
    const [o] = manifests(path.join(t.dir, 'backups', 'hearth', b.db('openhim')));
    expect(o!.facts).toMatchObject({ document_counts: { transactions: 7 }, documents: 7 });

    if (b.double) {
      const { server, invocations, fixtures } = b.double;
      // The stand-in streamed its fixture; storage holds exactly those bytes.
      expect(sha256(artifact)).toBe(sha256(readFileSync(path.join(fixtures, `${b.db('hearth')}.archive.gz`))));
      const dumps = invocations().filter((i) => i.tool === 'mongodump');
      expect(dumps.map((i) => i.argv[1]).sort()).toEqual(['--db=hearth', '--db=openhim']);
      for (const d of dumps) {
        expect(d.argv).toEqual([expect.stringMatching(/^--config=\/.*\/bkp-mongo-[^/]+\/config\.yaml$/), d.argv[1], '--archive', '--gzip']);
        // The password travels in a private file, never on the command line, and the file is gone after.
        expect(d.argv.join(' ')).not.toContain(PASSWORD);
        expect(d.config.mode).toBe('600');
        expect(d.config.content).toBe(`uri: ${JSON.stringify(`mongodb://bkp:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}/?authSource=admin`)}\n`);
        expect(existsSync(d.config.path)).toBe(false);
      }
      // The driver did the preflight and the counts: handshake and auth, then these commands.
      for (const c of ['admin.ismaster', 'admin.saslContinue', 'admin.ping', 'admin.buildInfo', 'admin.listDatabases', 'hearth.listCollections', 'hearth.aggregate']) {
        expect(server.commands).toContain(c);
      }
    }
  });

  it('verify --deep reads every archive whole: structure, CRCs and counts against the manifest', async () => {
    const v = await bkp(['verify', '-c', config, '--deep'], { env: b.env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(
      new RegExp(`OK +local: hearth/${b.db('hearth')} [0-9a-f]{12} \\(2026-11-21T23:05:00.000Z\\) — mongodump archive 0\\.1( \\([^)]*\\))?: 3 collections, 35 documents, every CRC matches; \\d+ bytes uncompressed — encounters 25, patients 10, tasks 0`),
    );
    expect(v.stdout).toMatch(/2 backups verified \(deep\)/);
  });

  it('restores into another database (--nsFrom/--nsTo), then compares the document counts', async () => {
    const r = await bkp(['restore', 'hearth', '-c', config, '--unit', b.db('hearth'), '--to', b.db('hearth_copy')], { env: b.env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Restored hearth/${b.db('hearth')} backup`);
    expect(r.stdout).toContain(`into database "${b.db('hearth_copy')}" on ${b.where}`);
    expect(r.stdout).toContain(`renamed ${b.db('hearth')}.* to ${b.db('hearth_copy')}.*`);
    expect(r.stdout).toContain('document counts match the backup: 3 collections, 35 documents (encounters 25, patients 10, tasks 0)');
    expect(r.stdout).not.toContain('--drop');
    expect(canonical(await b.documents(b.db('hearth_copy')))).toEqual(canonical(original));

    if (b.double) {
      const restore = b.double.invocations().filter((i) => i.tool === 'mongorestore').pop()!;
      expect(restore.argv).toEqual([expect.stringMatching(/^--config=/), '--archive', '--gzip', '--nsInclude=hearth.*', '--nsFrom=hearth.*', '--nsTo=hearth_copy.*']);
      expect(existsSync(restore.config.path)).toBe(false);
      // mongorestore read the stored archive whole and unchanged.
      const [m] = manifests(path.join(t.dir, 'backups', 'hearth', 'hearth'));
      expect(restore.stdin).toEqual({ bytes: m!.size, sha256: m!.sha256 });
      expect(restore.written).toEqual({ 'hearth_copy.encounters': 25, 'hearth_copy.patients': 10, 'hearth_copy.tasks': 0 });
    }
  });

  it('refuses to restore over data without --force; with --force takes a safety backup, then restores with --drop', async () => {
    const hearth = b.db('hearth');
    const broken = hearthData();
    broken.patients = broken.patients!.slice(0, 4).map((p) => ({ ...p, name: 'overwritten by mistake' }));
    broken.encounters = [];
    await b.seed(hearth, broken, HEARTH_VIEWS);

    const refused = await bkp(['restore', 'hearth', '-c', config, '--unit', hearth, '--backup', 'latest'], { env: b.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`database "${hearth}" on ${b.where} (4 collections) already holds data and restoring overwrites it: run again with --force (bkp first takes a safety backup)`);

    const before = manifests(path.join(t.dir, 'backups', 'hearth', hearth)).map((m) => m.id as string);
    const forced = await bkp(['restore', 'hearth', '-c', config, '--unit', hearth, '--backup', before[0]!, '--force', '--now', '2026-11-22T10:00:00Z'], { env: b.env });
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    const safetyId = new RegExp(`Safety backup ([0-9a-f]{12}) of hearth/${hearth} taken`).exec(forced.stdout)?.[1];
    expect(safetyId, forced.stdout).toBeDefined();
    expect(forced.stdout).toContain('collections of the backup were dropped first (--drop)');
    expect(forced.stdout).toContain('document counts match the backup: 3 collections, 35 documents');
    expect(canonical(await b.documents(hearth))).toEqual(canonical(original));

    if (b.double) {
      const calls = b.double.invocations();
      const [safetyDump, restore] = calls.slice(-2);
      expect(safetyDump).toMatchObject({ tool: 'mongodump', argv: [expect.stringMatching(/^--config=/), '--db=hearth', '--archive', '--gzip'] });
      expect(restore).toMatchObject({ tool: 'mongorestore', argv: [expect.stringMatching(/^--config=/), '--archive', '--gzip', '--nsInclude=hearth.*', '--drop'] });
    }

    // The safety backup holds the broken state: restoring it elsewhere gives it back.
    const back = await bkp(['restore', 'hearth', '-c', config, '--unit', hearth, '--backup', safetyId!, '--to', b.db('hearth_broken')], { env: b.env });
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(back.stdout).toContain('document counts match the backup: 3 collections, 4 documents (encounters 0, patients 4, tasks 0)');
    expect(canonical(await b.documents(b.db('hearth_broken')))).toEqual(canonical(broken));
  });

  it('databases: all finds the user databases, never admin, config or local', async () => {
    const file = path.join(t.dir, 'all.yaml');
    writeFileSync(file, policyFor(b).replace(/databases: \[.*\]/, 'databases: all'));
    const p = await bkp(['plan', '-c', file, '--json', '--now', '2026-11-23T23:05:00Z'], { env: b.env });
    expect(p.code, p.stdout + p.stderr).toBe(0);
    const units = (JSON.parse(p.stdout) as { actions: { unit?: string }[] }).actions.map((x) => x.unit);
    for (const db of ['hearth', 'openhim', 'hearth_copy', 'hearth_broken']) expect(units).toContain(b.db(db));
    for (const db of ['admin', 'config', 'local']) expect(units).not.toContain(db);
  });

  it('an unreachable server fails the preflight, naming the target and the masked connection string; nothing is stored', async () => {
    const dir = path.join(t.dir, 'down');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'bkp.yaml');
    writeFileSync(file, policyFor({ ...b, uriYaml: 'mongodb://bkp:${env:MONGO_PASSWORD}@127.0.0.1:1/admin?authSource=admin' }).replace('connect_timeout: 5', 'connect_timeout: 2'));
    const a = await bkp(['apply', '-c', file, '--auto-approve'], { env: { ...b.env, MONGO_PASSWORD: ENCODED } });
    expect(a.code).toBe(1);
    expect(a.stdout).toContain('target hearth: cannot connect to MongoDB at mongodb://bkp:***@127.0.0.1:1/admin?authSource=admin: connection refused (is mongod running and listening on that address?)');
    expect(a.stdout + a.stderr).not.toContain(PASSWORD);
    expect(a.stdout + a.stderr).not.toContain(ENCODED);
    expect(filesUnder(path.join(dir, 'backups')).filter((f) => !f.startsWith('runs/'))).toEqual([]);
  });
}

describe('mongodb (wire-protocol double + stand-in mongodump/mongorestore)', () => {
  let server: MongoWireServer;
  let t: { dir: string; cleanup: () => void };
  let fixtures: string;
  let log: string;
  const invocations = (): Invocation[] =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Invocation)
      : [];
  let backend: Backend;
  const env = (extra: Record<string, string> = {}) => ({ PATH: BIN, MONGO_STANDIN_NODE: process.execPath, MONGO_STANDIN_LOG: log, MONGO_STANDIN_FIXTURES: fixtures, MONGO_PASSWORD: ENCODED, ...extra });

  beforeAll(async () => {
    t = tempDir('bkp-mongo-double-');
    fixtures = path.join(t.dir, 'fixtures');
    log = path.join(t.dir, 'tools.jsonl');
    mkdirSync(fixtures);
    server = await startMongoWireServer({ users: { bkp: PASSWORD } });
    backend = {
      uriYaml: `mongodb://bkp:\${env:MONGO_PASSWORD}@127.0.0.1:${server.port}/admin`,
      where: `127.0.0.1:${server.port}`,
      env: env(),
      db: (base) => base,
      // The double's data and the fixture the stand-in mongodump streams are set together: the
      // archive is what a real mongodump of that data would hold.
      async seed(db, data, views = {}, archive = {}) {
        server.setDatabase(db, data, views);
        writeFileSync(path.join(fixtures, `${db}.archive.gz`), gzipArchive(db, data, { views, ...archive }));
      },
      async documents(db) {
        const out: Record<string, Document[]> = {};
        for (const [name, c] of server.data.get(db) ?? []) if (c.type === 'collection') out[name] = c.documents;
        return out;
      },
      double: { server, invocations, fixtures },
    };
  });
  afterAll(async () => {
    await server?.stop();
    t?.cleanup();
  });

  it('the test archive writer computes CRC-64 as Go\'s crc64.ECMA does', () => {
    // The check value of CRC-64/XZ, which is Go's crc64.Checksum(…, MakeTable(ECMA)).
    expect(crc64(Buffer.from('123456789')).toString(16)).toBe('995dc9bbdf1939fa');
  });

  scenario(() => backend);

  describe('failures, with the doubles only', () => {
    let w: { dir: string; cleanup: () => void };
    let config: string;
    beforeAll(() => {
      w = tempDir('bkp-mongo-fail-');
      config = path.join(w.dir, 'bkp.yaml');
      writeFileSync(config, policyFor(backend));
    });
    afterAll(() => w?.cleanup());

    it('a count that differs after mongorestore fails the restore', async () => {
      await backend.seed('hearth', hearthData(), HEARTH_VIEWS);
      const a = await bkp(['backup', 'hearth', '-c', config, '--unit', 'hearth'], { env: backend.env });
      expect(a.code, a.stdout + a.stderr).toBe(0);
      const [m] = manifests(path.join(w.dir, 'backups', 'hearth', 'hearth'));
      const r = await bkp(['restore', 'hearth', '-c', config, '--unit', 'hearth', '--to', 'hearth_lossy'], { env: env({ MONGO_STANDIN_LOSE: 'encounters:2' }) });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `target hearth: mongorestore into database "hearth_lossy" on 127.0.0.1:${server.port}: the restored document counts differ from the backup ${m!.id as string}: encounters has 23, the backup 25 (mongorestore reported 2 documents that failed to restore)`,
      );
    });

    it('restores to another server given as a mongodb:// URI, whose path names the database', async () => {
      const to = `mongodb://bkp:${encodeURIComponent(PASSWORD)}@localhost:${server.port}/hearth_elsewhere?authSource=admin`;
      const r = await bkp(['restore', 'hearth', '-c', config, '--unit', 'hearth', '--to', to], { env: backend.env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`into database "hearth_elsewhere" on localhost:${server.port}`);
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
      expect(r.stdout + r.stderr).not.toContain(ENCODED);
      const restore = invocations().pop()!;
      expect(restore.argv.slice(1)).toEqual(['--archive', '--gzip', '--nsInclude=hearth.*', '--nsFrom=hearth.*', '--nsTo=hearth_elsewhere.*']);
      // The tools get the URI without its database (they would take it for --db), authSource kept.
      expect(restore.uri).toBe(`mongodb://bkp:${encodeURIComponent(PASSWORD)}@localhost:${server.port}/?authSource=admin`);
      expect(server.counts('hearth_elsewhere')).toEqual({ encounters: 25, patients: 10, tasks: 0 });
    });

    it('missing or too old MongoDB Database Tools are named, with how to install them', async () => {
      const empty = path.join(w.dir, 'empty-bin');
      mkdirSync(empty, { recursive: true });
      const noDump = await bkp(['backup', 'hearth', '-c', config, '--unit', 'openhim'], { env: env({ PATH: empty }) });
      expect(noDump.code).toBe(1);
      expect(noDump.stdout).toContain('target hearth: mongodump is not installed (not found on PATH): install the MongoDB Database Tools (mongodump and mongorestore, version 100.3 or newer): https://www.mongodb.com/docs/database-tools/installation/');
      expect(noDump.stdout).toContain('or set mongodump_path');

      // mongodump alone on PATH: backups work, restores say what is missing.
      const onlyDump = path.join(w.dir, 'only-dump');
      mkdirSync(onlyDump, { recursive: true });
      writeFileSync(path.join(onlyDump, 'mongodump'), `#!/bin/sh\nexec "$MONGO_STANDIN_NODE" ${JSON.stringify(path.join(BIN, 'mongo-standin.mjs'))} mongodump "$@"\n`, { mode: 0o755 });
      const noRestore = await bkp(['restore', 'hearth', '-c', config, '--unit', 'hearth', '--to', 'hearth_x'], { env: env({ PATH: onlyDump }) });
      expect(noRestore.code).toBe(1);
      expect(noRestore.stderr).toContain('target hearth: mongorestore is not installed (not found on PATH): install the MongoDB Database Tools');

      writeFileSync(path.join(w.dir, 'path.yaml'), policyFor(backend).replace('connect_timeout: 5', 'connect_timeout: 5\n    mongodump_path: ./tools/mongodump'));
      const badPath = await bkp(['backup', 'hearth', '-c', path.join(w.dir, 'path.yaml'), '--unit', 'openhim'], { env: backend.env });
      expect(badPath.stdout).toContain(`target hearth: ${path.join(w.dir, 'tools', 'mongodump')} (from mongodump_path) cannot be run: install the MongoDB Database Tools`);

      const old = await bkp(['backup', 'hearth', '-c', config, '--unit', 'openhim'], { env: env({ MONGO_STANDIN_VERSION: '100.2.1' }) });
      expect(old.code).toBe(1);
      expect(old.stdout).toContain(`target hearth: mongodump 100.2.1 (mongodump) is too old: bkp passes the connection string in a --config file, which needs 100.3 or newer`);
      expect(filesUnder(path.join(w.dir, 'backups', 'hearth', 'openhim'))).toEqual([]);
    });

    it('mongodump failing half-way fails the backup with its own message; nothing is stored', async () => {
      const dir = path.join(w.dir, 'midway');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'bkp.yaml'), policyFor(backend));
      const a = await bkp(['backup', 'hearth', '-c', path.join(dir, 'bkp.yaml'), '--unit', 'hearth'], { env: env({ MONGO_STANDIN_FAIL: 'mongodump-midway' }) });
      expect(a.code).toBe(1);
      expect(a.stdout).toContain(`target hearth: mongodump of database "hearth" on 127.0.0.1:${server.port} failed (exit code 1): `);
      expect(a.stdout).toContain('Failed: error writing data for collection `hearth.encounters` to disk: connection reset by peer');
      expect(filesUnder(path.join(dir, 'backups')).filter((f) => !f.startsWith('runs/'))).toEqual([]);
    });

    it('an archive that fails its CRC fails the backup as it streams; nothing is stored', async () => {
      const dir = path.join(w.dir, 'crc');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'bkp.yaml'), policyFor(backend));
      await backend.seed('openhim', openhimData(), {}, { badCrc: 'transactions' });
      const a = await bkp(['backup', 'hearth', '-c', path.join(dir, 'bkp.yaml'), '--unit', 'openhim'], { env: backend.env });
      expect(a.code).toBe(1);
      expect(a.stdout).toContain(`target hearth: mongodump of database "openhim" on 127.0.0.1:${server.port}: the archive it wrote: the CRC of openhim.transactions`);
      expect(a.stdout).toMatch(/the CRC of openhim\.transactions does not match its documents \(-?\d+ recorded, -?\d+ read\): the archive is corrupt/);
      expect(filesUnder(path.join(dir, 'backups')).filter((f) => !f.startsWith('runs/'))).toEqual([]);
      await backend.seed('openhim', openhimData());
    });

    it('a wrong password fails the preflight as an authentication failure, the password masked', async () => {
      const a = await bkp(['backup', 'hearth', '-c', config, '--unit', 'openhim'], { env: env({ MONGO_PASSWORD: 'not-the-password' }) });
      expect(a.code).toBe(1);
      expect(a.stdout).toContain(`target hearth: cannot connect to MongoDB at mongodb://bkp:***@127.0.0.1:${server.port}/admin: authentication failed for user "bkp"`);
      expect(a.stdout + a.stderr).not.toContain('not-the-password');
    });

    it('a password that is not percent-encoded is refused, without showing any of it', async () => {
      const a = await bkp(['backup', 'hearth', '-c', config, '--unit', 'openhim'], { env: env({ MONGO_PASSWORD: 'raw:pass/with@signs' }) });
      expect(a.code).toBe(1);
      expect(a.stdout + a.stderr).toContain('target hearth: uri: the user name or password holds characters that a connection string needs percent-encoded (: / ? # [ ] @ %)');
      for (const part of ['raw:pass', 'pass/with', 'with@signs', 'signs@127']) expect(a.stdout + a.stderr).not.toContain(part);
    });
  });
});

describe('mongodump archive reader (src/providers/mongodb/archive.ts) against the test writer', () => {
  const data = { ...hearthData(), big: [{ _id: 1, blob: new Binary(randomBytes(200_000)) }] };
  const archive = buildArchive('hearth', data, { views: HEARTH_VIEWS, segment: 2 });

  function scan(chunks: Buffer[]): Promise<ArchiveScanner> {
    const scanner = new ArchiveScanner();
    return new Promise((resolve, reject) => {
      scanner.on('finish', () => resolve(scanner));
      scanner.on('error', reject);
      Readable.from(chunks).pipe(scanner);
    });
  }
  const split = (b: Buffer, size: number) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));

  it('CRC-64 matches the textbook algorithm', () => {
    expect(BigInt.asUintN(64, new Crc64().update(Buffer.from('123456789')).signed()).toString(16)).toBe('995dc9bbdf1939fa');
    const b = randomBytes(4096);
    expect(BigInt.asUintN(64, new Crc64().update(b.subarray(0, 1000)).update(b.subarray(1000)).signed())).toBe(crc64(b));
  });

  it('gives the same result whatever the chunking, down to single bytes', async () => {
    const whole = await scan([archive]);
    expect(Object.fromEntries([...whole.summary.namespaces].map(([k, v]) => [k, v.documents]))).toEqual({
      'hearth.encounters': 25,
      'hearth.patients': 10,
      'hearth.tasks': 0,
      'hearth.big': 1,
      'hearth.recent_patients': 0,
    });
    expect(whole.summary.prelude.find((p) => p.collection === 'recent_patients')?.type).toBe('view');
    expect(whole.summary).toMatchObject({ formatVersion: '0.1', serverVersion: '7.0.14', toolVersion: '100.9.4', bytes: archive.length });
    for (const size of [1, 3, 7, 4096]) {
      const s = await scan(split(archive, size));
      expect(s.summary.namespaces).toEqual(whole.summary.namespaces);
    }
  });

  it('rejects what is not a whole, intact archive', async () => {
    await expect(scan([Buffer.from('{"not": "an archive"}')])).rejects.toThrow(/not a mongodump archive: it starts with 0x/);
    await expect(scan([Buffer.alloc(0)])).rejects.toThrow(/the archive is empty/);
    for (const cut of [2, 30, Math.floor(archive.length / 2), archive.length - 3]) {
      await expect(scan([archive.subarray(0, cut)])).rejects.toThrow(/ends inside its prelude|truncated/);
    }
    await expect(scan([buildArchive('hearth', data, { badCrc: 'patients' })])).rejects.toThrow(/the CRC of hearth\.patients does not match/);
    const flipped = Buffer.from(archive);
    flipped[flipped.length - 40] ^= 0xff;
    await expect(scan([flipped])).rejects.toThrow(/corrupt|does not match|truncated/);
    await expect(scanGzippedArchive(Readable.from([Buffer.from('plain bytes, not gzip')]))).rejects.toThrow(/the gzip stream is corrupt/);
  });
});

/** mongodump and mongorestore on PATH, or undefined. */
function realTools(): string | undefined {
  try {
    execFileSync('mongodump', ['--version'], { stdio: 'ignore' });
    execFileSync('mongorestore', ['--version'], { stdio: 'ignore' });
    return 'ok';
  } catch {
    return undefined;
  }
}

describe.skipIf(!process.env.BKP_TEST_MONGO_URL)('mongodb (real server from BKP_TEST_MONGO_URL, real mongodump/mongorestore)', () => {
  const url = process.env.BKP_TEST_MONGO_URL!;
  const prefix = `bkp_test_${randomBytes(3).toString('hex')}_`;
  let client: MongoClient;
  let backend: Backend;

  beforeAll(async () => {
    // Asked for a real run: missing tools are a failure, not a silent skip.
    if (!realTools()) throw new Error('BKP_TEST_MONGO_URL is set but mongodump/mongorestore (MongoDB Database Tools 100.3+) are not on PATH');
    client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    const hosts = /^mongodb(?:\+srv)?:\/\/(?:[^@/?]*@)?([^/?]+)/.exec(url)![1]!;
    backend = {
      uriYaml: '${env:BKP_TEST_MONGO_URL}',
      where: url.startsWith('mongodb+srv') ? `${hosts} (SRV)` : hosts,
      env: { BKP_TEST_MONGO_URL: url, MONGO_PASSWORD: ENCODED },
      db: (base) => `${prefix}${base}`,
      async seed(db, data, views = {}) {
        await client.db(db).dropDatabase();
        for (const [name, docs] of Object.entries(data)) {
          await client.db(db).createCollection(name);
          if (docs.length) await client.db(db).collection(name).insertMany(docs.map((d) => ({ ...d })));
        }
        for (const [name, on] of Object.entries(views)) await client.db(db).createCollection(name, { viewOn: on, pipeline: [] });
      },
      async documents(db) {
        const out: Record<string, Document[]> = {};
        for (const c of await client.db(db).listCollections({ type: 'collection' }, { nameOnly: true }).toArray()) {
          if (!c.name.startsWith('system.')) out[c.name] = await client.db(db).collection(c.name).find().toArray();
        }
        return out;
      },
    };
  });
  afterAll(async () => {
    if (!client) return;
    const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
    for (const d of databases) if (d.name.startsWith(prefix)) await client.db(d.name).dropDatabase();
    await client.close();
  });

  scenario(() => backend);
});
