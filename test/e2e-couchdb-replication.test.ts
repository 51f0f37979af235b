import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCouch, type CouchServer } from './helpers/couch-server.js';
import { bkp, lastLine, tempDir } from './helpers/cli.js';

// Replication tasks as declared resources (issue 4, seed 000), through the real CLI, against two
// CouchDB-compatible servers the test starts: a source and a replica "in another region".

/** JSON over HTTP to a test server (credentials taken out of the URL into a header). */
async function couch<T>(server: CouchServer, method: string, p: string, body?: unknown): Promise<{ status: number; json: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (server.authorization) headers.authorization = server.authorization;
  const res = await fetch(`${server.origin}/${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as T };
}

async function seed(server: CouchServer, db: string, docs: object[]): Promise<void> {
  await couch(server, 'PUT', server.db(db));
  const r = await couch<{ error?: string }[]>(server, 'POST', `${server.db(db)}/_bulk_docs`, { docs });
  expect(r.status).toBe(201);
}

async function docCount(server: CouchServer, db: string): Promise<number | undefined> {
  const r = await couch<{ doc_count?: number }>(server, 'GET', server.db(db));
  return r.status === 200 ? r.json.doc_count : undefined;
}

interface ReplicatorDoc {
  _id: string;
  _rev: string;
  source: unknown;
  target: unknown;
  create_target?: boolean;
  continuous?: boolean;
  bkp?: { managed_by: string; target: string; unit: string };
  _replication_state?: string;
}

async function replicatorDocs(server: CouchServer): Promise<ReplicatorDoc[]> {
  const r = await couch<{ rows: { doc: ReplicatorDoc }[] }>(server, 'GET', '_replicator/_all_docs?include_docs=true');
  return r.json.rows.map((x) => x.doc).filter((d) => !d._id.startsWith('_design/'));
}

function policy(src: CouchServer, replicaUrl: string, dbs: string[], extra = ''): string {
  return `version: 1
storage:
  local: { type: local, path: ./backups }
targets:
  iot:
    engine: couchdb
    url: \${env:CLOUDANT_URL}
    replicate_to: \${env:CLOUDANT_REPLICA_URL}
    databases: [${dbs.map((d) => src.db(d)).join(', ')}]
    export: false
    schedule: { cron: "0 3 * * 0", retention: { keep_weekly: 4 } }
${extra}`;
}

/** Sunday 2026-11-22 03:00 UTC fired; a week later the next. */
const SUNDAY = '2026-11-22T04:00:00Z';

describe('couchdb replication tasks (express-pouchdb source and replica)', () => {
  let src: CouchServer;
  let replica: CouchServer;
  const t = tempDir();
  const config = path.join(t.dir, 'bkp.yaml');
  let env: Record<string, string>;
  const devices = () => src.db('devices');

  beforeAll(async () => {
    [src, replica] = await Promise.all([startCouch(), startCouch()]);
    env = { CLOUDANT_URL: src.url, CLOUDANT_REPLICA_URL: replica.url };
    await seed(src, 'devices', [{ _id: 'd1', kind: 'gateway' }, { _id: 'd2', kind: 'shield' }]);
    await seed(src, 'users', [{ _id: 'u1', name: 'ada' }]);
    writeFileSync(config, policy(src, replica.url, ['devices', 'users']));
  }, 60_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), replica?.stop()]);
    t.cleanup();
  });

  it('plan shows one replication document per database, one-shot, with create_target', async () => {
    const r = await bkp(['plan', '-c', config, '--now', SUNDAY, '--detailed-exitcode'], { env });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toContain(`  + replication "bkp-iot-${devices()}" {`);
    expect(r.stdout).toContain(`      + source        = "${src.origin}/${devices()}"`);
    expect(r.stdout).toContain(`      + target        = "${replica.origin}/${devices()}"`);
    expect(r.stdout).toContain('      + continuous    = false');
    expect(r.stdout).toContain(`# iot/${devices()}: declared: replicate ${src.origin}/${devices()} to ${replica.origin}/${devices()} (one-shot)`);
    expect(lastLine(r.stdout)).toBe('Plan: 2 to create, 0 to change, 0 to delete.');
  });

  it('apply writes the documents, waits for the replications, and the replica has the data', async () => {
    const r = await bkp(['apply', '-c', config, '--now', SUNDAY, '--auto-approve'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`iot/${devices()}: create replication bkp-iot-${devices()}: done in .* \\(replication completed: 2 documents written\\)`));
    expect(await docCount(replica, 'devices')).toBe(2);
    expect(await docCount(replica, 'users')).toBe(1);
    const docs = await replicatorDocs(src);
    expect(docs.map((d) => d._id).sort()).toEqual([`bkp-iot-${devices()}`, `bkp-iot-${src.db('users')}`].sort());
    expect(docs[0]!.bkp).toMatchObject({ managed_by: 'bkp', target: 'iot' });
    expect(docs.every((d) => d.continuous === false && d.create_target === true)).toBe(true);
  });

  it('a second plan the same day: No changes.', async () => {
    const r = await bkp(['plan', '-c', config, '--now', SUNDAY, '--detailed-exitcode'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(lastLine(r.stdout)).toBe('No changes.');
  });

  it('a week later the completed one-shot tasks run again, and bring the new documents', async () => {
    await couch(src, 'PUT', `${devices()}/d3`, { kind: 'new' });
    // Completion times are real clock times; a `now` a week after them makes the schedule due.
    const later = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const p = await bkp(['plan', '-c', config, '--now', later], { env });
    expect(p.stdout).toContain(`  ~ replication "bkp-iot-${devices()}" {`);
    expect(p.stdout).toMatch(/# iot\/\S+: due: last run completed \S+, schedule 0 3 \* \* 0 \(UTC\) fired/);
    expect(lastLine(p.stdout)).toBe('Plan: 0 to create, 2 to change, 0 to delete.');
    const a = await bkp(['apply', '-c', config, '--now', later, '--auto-approve'], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await docCount(replica, 'devices')).toBe(3);
  });

  it('bkp backup reruns a replication on demand (only the unit asked for)', async () => {
    await couch(src, 'PUT', `${devices()}/d4`, { kind: 'on-demand' });
    const r = await bkp(['backup', 'iot', '--unit', devices(), '-c', config], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rerun replication bkp-iot-\S+: done/);
    expect(r.stdout).not.toContain(`bkp-iot-${src.db('users')}`);
    expect(await docCount(replica, 'devices')).toBe(4);
  });

  it('drift: a document edited by hand is changed back, field by field; one deleted by hand is created again', async () => {
    const id = `bkp-iot-${devices()}`;
    const doc = (await replicatorDocs(src)).find((d) => d._id === id)!;
    const edited = { ...doc, create_target: false };
    delete edited._replication_state;
    const put = await couch(src, 'PUT', `_replicator/${id}`, edited);
    expect(put.status, JSON.stringify(put.json)).toBe(201);
    const p = await bkp(['plan', '-c', config, '--now', SUNDAY], { env });
    expect(p.stdout).toContain(`# iot/${devices()}: drift: create_target changed on the live system since bkp wrote it`);
    expect(p.stdout).toContain('      ~ create_target = false -> true');
    expect((await bkp(['apply', '-c', config, '--now', SUNDAY, '--auto-approve'], { env })).code).toBe(0);
    expect((await replicatorDocs(src)).find((d) => d._id === id)!.create_target).toBe(true);

    const now = (await replicatorDocs(src)).find((d) => d._id === id)!;
    expect((await couch(src, 'DELETE', `_replicator/${id}?rev=${now._rev}`)).status).toBe(200);
    const p2 = await bkp(['plan', '-c', config, '--now', SUNDAY], { env });
    expect(p2.stdout).toContain(`# iot/${devices()}: drift: replication ${id} was deleted on the live system; bkp creates it again`);
    expect(lastLine(p2.stdout)).toBe('Plan: 1 to create, 0 to change, 0 to delete.');
    expect((await bkp(['apply', '-c', config, '--now', SUNDAY, '--auto-approve'], { env })).code).toBe(0);
  });

  it('documents bkp did not write are never touched; one in the way of a declared name is an error', async () => {
    const mine = `bkp-iot-${src.db('shields')}`;
    await seed(src, 'shields', [{ _id: 's1' }]);
    expect((await couch(src, 'PUT', `_replicator/manual-nightly`, { source: `${src.origin}/${devices()}`, target: `${replica.origin}/manual`, create_target: true })).status).toBe(201);
    expect((await couch(src, 'PUT', `_replicator/${mine}`, { source: `${src.origin}/${src.db('shields')}`, target: `${replica.origin}/elsewhere`, create_target: true })).status).toBe(201);
    writeFileSync(config, policy(src, replica.url, ['devices', 'users', 'shields']));
    const p = await bkp(['plan', '-c', config, '--now', SUNDAY], { env });
    expect(p.stdout + p.stderr).toContain(`replication ${mine} already exists and was not made by bkp; bkp never changes what it did not create`);
    expect(p.stdout).not.toContain('manual-nightly');
    const a = await bkp(['apply', '-c', config, '--now', SUNDAY, '--auto-approve'], { env });
    expect(a.code).toBe(1);
    expect(a.stdout).toContain(`Error: target iot: replication ${mine} already exists and was not made by bkp`);
    expect(a.stdout).not.toMatch(/: done in/); // nothing applied
    expect((await replicatorDocs(src)).find((d) => d._id === mine)!.bkp).toBeUndefined();
  });

  it('a database dropped from the policy: its document is deleted, the others and the hand-made one stay', async () => {
    const manual = (await replicatorDocs(src)).find((d) => d._id === `bkp-iot-${src.db('shields')}`)!;
    await couch(src, 'DELETE', `_replicator/${manual._id}?rev=${manual._rev}`);
    writeFileSync(config, policy(src, replica.url, ['devices']));
    const p = await bkp(['plan', '-c', config, '--now', SUNDAY], { env });
    expect(p.stdout).toContain(`  - replication "bkp-iot-${src.db('users')}" {`);
    expect(p.stdout).toContain(`no longer declared: ${src.db('users')} is not in the target's databases`);
    expect(lastLine(p.stdout)).toBe('Plan: 0 to create, 0 to change, 1 to delete.');
    expect((await bkp(['apply', '-c', config, '--now', SUNDAY, '--auto-approve'], { env })).code).toBe(0);
    const ids = (await replicatorDocs(src)).map((d) => d._id).sort();
    expect(ids).toEqual([`bkp-iot-${devices()}`, 'manual-nightly'].sort());
    expect(await docCount(replica, 'users')).toBe(1); // the replica's data is never deleted
  });

  it('a replication that cannot complete: apply says so after replication_timeout, and the next plan leaves it running', async () => {
    const dead = 'http://127.0.0.1:9'; // discard port: nothing listens
    const failing = path.join(t.dir, 'failing.yaml');
    writeFileSync(failing, `${policy(src, dead, ['users']).replace('iot:', 'lost:').replace('\${env:CLOUDANT_REPLICA_URL}', dead)}    replication_timeout: 2\n`);
    const a = await bkp(['apply', '-c', failing, '--now', SUNDAY, '--auto-approve'], { env });
    expect(a.code).toBe(1);
    expect(a.stdout + a.stderr).toMatch(/replication bkp-lost-\S+ did not complete within 2 s \(state: running\); it keeps running on the server/);
    const p = await bkp(['plan', '-c', failing, '--now', SUNDAY], { env });
    expect(p.stdout + p.stderr).toMatch(/Note: lost\/\S+: replication bkp-lost-\S+ is still running \(since \S+\): left to finish/);
    expect(lastLine(p.stdout)).toBe('No changes.');
  });
});

describe('couchdb replication with credentials (express-pouchdb with an admin)', () => {
  let src: CouchServer;
  let replica: CouchServer;
  const t = tempDir();
  const config = path.join(t.dir, 'bkp.yaml');

  beforeAll(async () => {
    [src, replica] = await Promise.all([startCouch({ admin: true }), startCouch({ admin: true })]);
    await seed(src, 'devices', [{ _id: 'd1' }, { _id: 'd2' }, { _id: 'd3' }]);
    writeFileSync(config, policy(src, replica.url, ['devices']));
  }, 60_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), replica?.stop()]);
    t.cleanup();
  });

  it('replicates with the credentials, which appear in no plan, output or plan file', async () => {
    const env = { CLOUDANT_URL: src.url, CLOUDANT_REPLICA_URL: replica.url };
    const planFile = path.join(t.dir, 'plan.json');
    const p = await bkp(['plan', '-c', config, '--now', SUNDAY, '--out', planFile, '--json'], { env });
    expect(p.code, p.stderr).toBe(0);
    const a = await bkp(['apply', planFile, '-c', config, '--auto-approve'], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await docCount(replica, 'devices')).toBe(3);
    const { readFileSync } = await import('node:fs');
    for (const text of [p.stdout, p.stderr, a.stdout, a.stderr, readFileSync(planFile, 'utf8')]) {
      expect(text).not.toContain(src.admin!.password);
      expect(text).not.toContain(replica.admin!.password);
    }
    expect(p.stdout).toContain('"source_auth":"(sensitive)"');
    const again = await bkp(['plan', '-c', config, '--now', SUNDAY, '--detailed-exitcode'], { env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('bkp backup of an unreachable server says why, not "no unit"', async () => {
    const r = await bkp(['backup', 'iot', '-c', config], { env: { CLOUDANT_URL: 'http://admin:pw-123456@127.0.0.1:9', CLOUDANT_REPLICA_URL: replica.url } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/target iot: .*CouchDB server http:\/\/127\.0\.0\.1:9/);
    expect(r.stdout + r.stderr).not.toContain('pw-123456');
  });

  it('a wrong password: a clear error naming the server, the password masked', async () => {
    const bad = src.url.replace(src.admin!.password, 'wrong-password');
    const r = await bkp(['plan', '-c', config, '--now', SUNDAY], { env: { CLOUDANT_URL: bad, CLOUDANT_REPLICA_URL: replica.url } });
    expect(r.stdout + r.stderr).toContain(`CouchDB server ${src.origin}`);
    expect(r.stdout + r.stderr).toMatch(/401/);
    expect(r.stdout + r.stderr).not.toContain('wrong-password');
  });
});
