import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ObjectId } from 'mongodb';
import { bkp, lastLine, ROOT, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';
import { startMongoWireServer, type MongoWireServer } from './helpers/mongo-wire-server.js';
import { gzipArchive } from './helpers/mongo-archive.js';
import { startEsDouble, type EsServer } from './helpers/es-server.js';
import { startInfluxd, writePoints, type InfluxServer } from './helpers/influxdb-server.js';
import { startSshd, type SshdServer } from './helpers/sshd-server.js';

// The OpenCRVS scenario (seed 004) end to end with examples/opencrvs.yaml as shipped: nightly
// MongoDB dumps of four databases, Elasticsearch snapshots, an InfluxDB backup, a copy of every
// artifact to a backup server over SSH, a 7-day rotation, and the restore of "a chosen day".
// Real here: InfluxDB 1.x and OpenSSH. No MongoDB or Elasticsearch can be installed on these
// machines, so those two run against DOUBLES (the wire-protocol server with stand-in
// mongodump/mongorestore, and the Elasticsearch REST double), as the README says.

const MONGO_DBS = ['hearth-dev', 'openhim-dev', 'user-mgnt', 'application-config'];
const MONGO_PASSWORD = 'ocrvs-mongo-pw';
const ES_PASSWORD = 'ocrvs-elastic-pw';
const BIN = path.join(ROOT, 'test', 'helpers', 'bin');

const night = (day: number) => new Date(Date.UTC(2026, 10, day, 0, 30, 0)).toISOString();

describe('OpenCRVS (seed 004): examples/opencrvs.yaml with real InfluxDB and sshd, MongoDB and Elasticsearch doubles', () => {
  let mongo: MongoWireServer;
  let es: EsServer;
  let influx: InfluxServer;
  let sshd: SshdServer;
  const t = tempDir('bkp-opencrvs-');
  const config = path.join(t.dir, 'examples', 'opencrvs.yaml');
  let env: Record<string, string>;

  beforeAll(async () => {
    [mongo, es, influx, sshd] = await Promise.all([
      startMongoWireServer({ users: { bkp: MONGO_PASSWORD } }),
      startEsDouble({ auth: { username: 'elastic', password: ES_PASSWORD } }),
      startInfluxd(),
      startSshd(),
    ]);
    const fixtures = path.join(t.dir, 'fixtures');
    mkdirSync(fixtures);
    for (const [i, db] of MONGO_DBS.entries()) {
      const data = { records: Array.from({ length: 5 + i }, (_, n) => ({ _id: new ObjectId(), db, n })) };
      mongo.setDatabase(db, data, {});
      writeFileSync(path.join(fixtures, `${db}.archive.gz`), gzipArchive(db, data));
    }
    await es.seedIndex('ocrvs-births', 40);
    await writePoints(influx, 'ocrvs', ['registrations,office=ibombo count=3i 1763683200']);
    mkdirSync(path.dirname(config), { recursive: true });
    // The example as shipped; only the SSH port is the test server's (the schema wants a number there).
    cpSync(path.join(ROOT, 'examples', 'opencrvs.yaml'), config);
    writeFileSync(config, readFileSync(config, 'utf8').replace('    port: 22\n', `    port: ${sshd.port}\n`));
    const esUrl = new URL(es.url);
    env = {
      PATH: `${BIN}${path.delimiter}${process.env.PATH}`,
      MONGO_STANDIN_NODE: process.execPath,
      MONGO_STANDIN_LOG: path.join(t.dir, 'tools.jsonl'),
      MONGO_STANDIN_FIXTURES: fixtures,
      MONGODB_URI: `mongodb://bkp:${MONGO_PASSWORD}@127.0.0.1:${mongo.port}/admin`,
      ELASTICSEARCH_URL: `${esUrl.protocol}//${esUrl.host}`,
      ELASTICSEARCH_ADMIN_PASSWORD: ES_PASSWORD,
      INFLUXDB_HOST: influx.rpcAddress,
      INFLUXDB_HTTP: influx.httpUrl,
      BACKUP_DIR: path.join(t.dir, 'data', 'backups'),
      ES_REPOSITORY_PATH: '/data/backups/elasticsearch',
      BACKUP_SERVER_HOST: sshd.host,
      BACKUP_SERVER_USER: sshd.user,
      BACKUP_SERVER_PATH: sshd.root,
      BACKUP_SERVER_KEY_FILE: sshd.privateKeyFile,
      BACKUP_SERVER_HOST_KEY: sshd.hostKeyFingerprint,
    };
  }, 120_000);
  afterAll(async () => {
    await Promise.all([mongo?.stop(), es?.stop(), influx?.stop(), sshd?.stop()]);
    t.cleanup();
  });

  it('validates', async () => {
    const v = await bkp(['validate', '-c', config], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('the first night: every database dumped, copied to the backup server, the repository registered and snapshotted', async () => {
    const p = await bkp(['plan', '-c', config, '--now', night(1)], { env });
    expect(p.code, p.stdout + p.stderr).toBe(0);
    // 4 mongo + 1 influx backups, their 5 copies, the repository and a snapshot.
    expect(lastLine(p.stdout)).toBe('Plan: 12 to create, 0 to change, 0 to delete.');
    const a = await bkp(['apply', '-c', config, '--now', night(1), '--auto-approve'], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    for (const secret of [MONGO_PASSWORD, ES_PASSWORD]) expect(p.stdout + a.stdout + a.stderr).not.toContain(secret);
    const local = filesUnder(env.BACKUP_DIR!).filter((f) => f.endsWith('.manifest.json'));
    const remote = filesUnder(sshd.root).filter((f) => f.endsWith('.manifest.json'));
    expect(local.map((f) => f.split('/').slice(0, 2).join('/')).sort()).toEqual([...MONGO_DBS.map((d) => `mongo/${d}`), 'metrics/ocrvs'].sort());
    expect(remote.map((f) => f.split('/').slice(0, 2).join('/')).sort()).toEqual(local.map((f) => f.split('/').slice(0, 2).join('/')).sort());
    const l = JSON.parse((await bkp(['list', 'search', '-c', config, '--json', '--now', night(1)], { env })).stdout) as { backups: unknown[] };
    expect(l.backups).toHaveLength(1);
  });

  it('seven-day rotation: after the ninth night each database keeps 7 backups, here and on the backup server', async () => {
    for (let day = 2; day <= 9; day++) {
      const a = await bkp(['apply', '-c', config, '--now', night(day), '--auto-approve'], { env });
      expect(a.code, `night ${day}: ${a.stdout}${a.stderr}`).toBe(0);
    }
    for (const root of [env.BACKUP_DIR!, sshd.root]) {
      for (const unit of [...MONGO_DBS.map((d) => `mongo/${d}`), 'metrics/ocrvs']) {
        const days = filesUnder(path.join(root, unit)).filter((f) => f.endsWith('.manifest.json')).map((f) => f.slice(0, 8)).sort();
        expect(days, `${root} ${unit}`).toEqual(['20261103', '20261104', '20261105', '20261106', '20261107', '20261108', '20261109']);
      }
    }
    const snaps = JSON.parse((await bkp(['list', 'search', '-c', config, '--json', '--now', night(9)], { env })).stdout) as { backups: { started_at: string }[] };
    expect(snaps.backups.map((b) => b.started_at.slice(0, 10))).toEqual(['2026-11-03', '2026-11-04', '2026-11-05', '2026-11-06', '2026-11-07', '2026-11-08', '2026-11-09']);
    const again = await bkp(['plan', '-c', config, '--now', night(9), '--detailed-exitcode'], { env });
    expect(again.code, again.stdout).toBe(0);
  }, 300_000);

  it('restores a chosen day: hearth-dev from the 5th (after a safety backup), and the Elasticsearch indices of the same night', async () => {
    const r = await bkp(['restore', 'mongo', '--unit', 'hearth-dev', '--backup', '2026-11-05', '--force', '-c', config, '--now', night(9)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Restoring mongo\/hearth-dev backup \S+ \(scheduled, started 2026-11-05T00:30:00/);
    expect(r.stdout).toMatch(/Safety backup \S+ of mongo\/hearth-dev taken/);
    const s = await bkp(['restore', 'search', '--backup', '2026-11-05', '--force', '-c', config, '--now', night(9)], { env });
    expect(s.code, s.stdout + s.stderr).toBe(0);
    expect(s.stdout).toMatch(/Restored search backup \S+ into ocrvs-births/);
  });
});
