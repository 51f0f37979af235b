import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEtcd, type EtcdServer } from './helpers/etcd-server.js';
import { freePort } from './helpers/postgres-server.js';
import { bkp, lastLine, ROOT, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';

const run = promisify(execFile);

/** etcdctl (API v3) against one endpoint; returns stdout. */
async function etcdctl(endpoint: string, args: string[]): Promise<string> {
  const { stdout } = await run('etcdctl', [`--endpoints=${endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' });
  return stdout;
}

/** Every key and value of the keyspace, decoded, sorted by key. */
async function dumpKeys(endpoint: string): Promise<Record<string, string>> {
  const j = JSON.parse(await etcdctl(endpoint, ['get', '', '--prefix', '-w', 'json'])) as { kvs?: { key: string; value: string }[] };
  const out: Record<string, string> = {};
  for (const kv of (j.kvs ?? []).sort((a, b) => Buffer.from(a.key, 'base64').toString().localeCompare(Buffer.from(b.key, 'base64').toString()))) {
    out[Buffer.from(kv.key, 'base64').toString('utf8')] = Buffer.from(kv.value, 'base64').toString('utf8');
  }
  return out;
}

/** examples/compose-etcd.yaml copied into DIR/examples (it stores into DIR/backups), as shipped. */
function copyExample(dir: string): string {
  mkdirSync(path.join(dir, 'examples'), { recursive: true });
  const config = path.join(dir, 'examples', 'compose-etcd.yaml');
  cpSync(path.join(ROOT, 'examples', 'compose-etcd.yaml'), config);
  return config;
}

interface Listed {
  id: string;
  kind: string;
  started_at: string;
  size: number;
  kept_by: string[];
  key: string;
}

describe('etcd engine: backup, facts, verify --deep, errors', () => {
  let server: EtcdServer;
  const t = tempDir();
  let config: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startEtcd();
    config = copyExample(t.dir);
    env = { ETCD_ENDPOINTS: server.endpoint };
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    t.cleanup();
  });

  it('takes a v3 snapshot with the etcd version, cluster id, revision and key count, and verifies it deeply', async () => {
    for (const [k, v] of [['app/a', '1'], ['app/b', '2'], ['other', 'x']]) await etcdctl(server.endpoint, ['put', k!, v!]);
    const status = await etcdctl(server.endpoint, ['endpoint', 'status', '-w', 'json']);
    const clusterId = BigInt(/"cluster_id":(\d+)/.exec(status)![1]!).toString(16);
    const revision = (JSON.parse(status) as { Status: { header: { revision: number } } }[])[0]!.Status.header.revision;

    const b = await bkp(['backup', 'cfg', '-c', config, '--now', '2026-03-01T12:00:00Z'], { env });
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const manifests = filesUnder(path.join(t.dir, 'backups', 'cfg', 'snapshot')).filter((f) => f.endsWith('.manifest.json'));
    expect(manifests).toHaveLength(1);
    const m = JSON.parse(readFileSync(path.join(t.dir, 'backups', 'cfg', 'snapshot', manifests[0]!), 'utf8')) as { engine: string; kind: string; facts: Record<string, unknown> };
    expect(m.engine).toBe('etcd');
    expect(m.kind).toBe('on_demand');
    expect(m.facts.etcd_version).toMatch(/^3\.\d+\.\d+$/);
    expect(m.facts.cluster_id).toBe(clusterId);
    expect(m.facts.revision).toBe(revision);
    expect(m.facts.key_count).toBe(3);
    expect(m.facts.db_size).toEqual(expect.any(Number));
    expect(m.facts.db_size as number).toBeGreaterThan(0);
    expect(m.facts.endpoint).toBe(server.endpoint);

    const list = JSON.parse((await bkp(['list', 'cfg', '-c', config, '--json'], { env })).stdout) as { backups: Listed[] };
    expect(list.backups.map((x) => [x.kind, x.key.endsWith('.db') || /\.db\.(gz|zst|lz4)$/.test(x.key)])).toEqual([['on_demand', true]]);

    const v = await bkp(['verify', '-c', config, '--deep'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toContain(`etcd snapshot: revision ${revision}, `);
    expect(v.stdout).toMatch(/\d+ keys, hash [0-9a-f]{8}/);
    expect(lastLine(v.stdout)).toMatch(/^1 backups? verified \(deep\)\.$/);

    // A restore needs the new data directory.
    const r = await bkp(['restore', 'cfg', '-c', config], { env });
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toContain('etcd restores into a new data directory: give --to-dir DIR');
  });

  it('names an unreachable endpoint, bounded in time, and writes nothing', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const u = tempDir();
    try {
      // A literal endpoint: values from ${env:…} are masked as secrets in all output.
      const cfg = path.join(u.dir, 'bkp.yaml');
      writeFileSync(cfg, `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly: { cron: "0 3 * * *", retention: { keep_within_daily: 7d, keep_on_demand: 1 } }
targets:
  cfg: { engine: etcd, endpoints: ["${dead}"], schedule: nightly }
`);
      const t0 = Date.now();
      const b = await bkp(['backup', 'cfg', '-c', cfg]);
      expect(b.code).toBe(1);
      expect(b.stdout + b.stderr).toContain(`target cfg: etcd is unreachable: no endpoint answered within 5s + 5s: ${dead} (connection refused)`);
      expect(Date.now() - t0).toBeLessThan(45_000);
      expect(filesUnder(path.join(u.dir, 'backups', 'cfg'))).toEqual([]);
    } finally {
      u.cleanup();
    }
  });

  it('says which package to install when etcdctl is missing', async () => {
    const b = await bkp(['backup', 'cfg', '-c', config], { env: { ...env, PATH: '/nonexistent' } });
    expect(b.code).toBe(1);
    expect(b.stdout + b.stderr).toContain('target cfg: etcdctl is not installed: install the etcd client (Debian/Ubuntu: apt-get install etcd-client)');
  });

  // Last in this block: it turns authentication on for this server.
  it('authenticates with a user and password kept out of the command line and of all output', async () => {
    const pw = 'Sup3r-secret-pw';
    await etcdctl(server.endpoint, ['user', 'add', `root:${pw}`]);
    await etcdctl(server.endpoint, ['auth', 'enable']);
    const cfg = path.join(t.dir, 'auth.yaml');
    writeFileSync(cfg, `version: 1
storage:
  local: { type: local, path: ./backups-auth }
schedules:
  nightly: { cron: "0 3 * * *", retention: { keep_daily: 7, keep_on_demand: 2 } }
targets:
  cfg:
    engine: etcd
    endpoints: ["${server.endpoint}"]
    auth: { username: root, password: "\${env:ETCD_PASSWORD}" }
    schedule: nightly
`);
    const ok = await bkp(['backup', 'cfg', '-c', cfg], { env: { ETCD_PASSWORD: pw } });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const bad = await bkp(['backup', 'cfg', '-c', cfg], { env: { ETCD_PASSWORD: 'wrong-password' } });
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toContain(`target cfg: etcd endpoint ${server.endpoint}: `);
    expect(bad.stdout + bad.stderr).toMatch(/authentication failed/);
    for (const out of [ok.stdout, ok.stderr, bad.stdout, bad.stderr]) {
      expect(out).not.toContain(pw);
      expect(out).not.toContain('wrong-password');
    }
  });
});

/**
 * Seed 001 (IBM Compose for etcd, "Backups") end to end with examples/compose-etcd.yaml as
 * shipped: 120 nights of applies against a real etcd whose keys change every day, plus three
 * on-demand backups; exactly the backups the runbook's table keeps remain, `bkp list` says why,
 * and the April monthly backup restores into a new data dir that a new etcd member serves with
 * the keys of that night.
 */
describe('seed 001: Compose for etcd backup schedule', () => {
  let server: EtcdServer;
  let restored: EtcdServer | undefined;
  const t = tempDir();
  let config: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startEtcd();
    config = copyExample(t.dir);
    env = { ETCD_ENDPOINTS: server.endpoint };
  }, 60_000);
  afterAll(async () => {
    await restored?.stop();
    await server?.stop();
    t.cleanup();
  });

  it('120 nights leave the dailies, weeklies, monthlies and the newest on-demand backup, and one restores into a new member', async () => {
    const start = Date.UTC(2026, 2, 1); // Sunday 2026-03-01; night 119 is Sunday 2026-06-28
    const onDemandDays = new Set(['2026-03-10', '2026-04-15', '2026-06-20']);
    const RESTORE_DAY = '2026-04-30';
    let onThatNight: Record<string, string> = {};
    for (let day = 0; day < 120; day++) {
      const date = new Date(start + day * 86_400_000).toISOString().slice(0, 10);
      // The day's writes: a key per day, a key rewritten daily, and every 10th day a deletion.
      await etcdctl(server.endpoint, ['put', `day/${date}`, `night ${day}`]);
      await etcdctl(server.endpoint, ['put', 'config/current', date]);
      if (day % 10 === 9) await etcdctl(server.endpoint, ['del', `day/${new Date(start + (day - 9) * 86_400_000).toISOString().slice(0, 10)}`]);
      if (date === RESTORE_DAY) onThatNight = await dumpKeys(server.endpoint);
      const a = await bkp(['apply', '-c', config, '--auto-approve', '--now', `${date}T03:10:00Z`], { env });
      expect(a.code, `${date}\n${a.stdout}\n${a.stderr}`).toBe(0);
      if (onDemandDays.has(date)) {
        await etcdctl(server.endpoint, ['put', 'ondemand/last', date]);
        const b = await bkp(['backup', 'cfg', '-c', config, '--now', `${date}T14:00:00Z`], { env });
        expect(b.code, `${date}\n${b.stdout}\n${b.stderr}`).toBe(0);
      }
    }

    // What remains, by the rules of examples/compose-etcd.yaml (restic keep_within semantics,
    // DESIGN §5), measured from the newest scheduled backup N = 2026-06-28T03:10Z (a Sunday):
    // - keep_within_daily 7d: threshold N-7d = Jun 21 03:10, strictly after → Jun 22…28 (7).
    // - keep_within_weekly 28d: threshold May 31 03:10, strictly after → Jun 1…28, the newest of
    //   each ISO week (Mon–Sun): the Sundays Jun 7, 14, 21, 28. (May 31, the newest of the week
    //   May 25–31, sits exactly on the threshold and is not inside.)
    // - keep_within_monthly 3m: threshold Jun 28 minus 3 calendar months = Mar 28 03:10 → the
    //   newest of March, April, May, June: Mar 31, Apr 30, May 31, Jun 28.
    // - keep_on_demand 1: of the on-demand backups (Mar 10, Apr 15, Jun 20 at 14:00) only Jun 20.
    // 7 + 3 (Jun 7, 14, 21) + 3 (Mar 31, Apr 30, May 31) scheduled + 1 on-demand = 14.
    const expected: Record<string, { kind: string; kept_by: string[] }> = {
      '2026-03-31T03:10': { kind: 'scheduled', kept_by: ['monthly within 3m'] },
      '2026-04-30T03:10': { kind: 'scheduled', kept_by: ['monthly within 3m'] },
      '2026-05-31T03:10': { kind: 'scheduled', kept_by: ['monthly within 3m'] },
      '2026-06-07T03:10': { kind: 'scheduled', kept_by: ['weekly within 28d'] },
      '2026-06-14T03:10': { kind: 'scheduled', kept_by: ['weekly within 28d'] },
      '2026-06-20T14:00': { kind: 'on_demand', kept_by: ['on-demand snapshot (keep_on_demand 1)'] },
      '2026-06-21T03:10': { kind: 'scheduled', kept_by: ['weekly within 28d'] },
      ...Object.fromEntries(['22', '23', '24', '25', '26', '27'].map((d) => [`2026-06-${d}T03:10`, { kind: 'scheduled', kept_by: ['daily within 7d'] }])),
      '2026-06-28T03:10': { kind: 'scheduled', kept_by: ['daily within 7d', 'weekly within 28d', 'monthly within 3m'] },
    };
    const NOW = '2026-06-28T12:00:00Z';
    const list = JSON.parse((await bkp(['list', 'cfg', '-c', config, '--json', '--now', NOW], { env })).stdout) as { backups: Listed[] };
    const got = Object.fromEntries(list.backups.map((b) => [b.started_at.slice(0, 16), { kind: b.kind, kept_by: b.kept_by }]));
    expect(got).toEqual(expected);
    // The storage holds exactly these artifacts (pruned ones are deleted, not just hidden).
    const artifacts = readdirSync(path.join(t.dir, 'backups', 'cfg', 'snapshot')).filter((f) => !f.endsWith('.manifest.json'));
    expect(artifacts).toHaveLength(14);

    // The same, for people: kind, age, size and the reasons on each backup's line.
    const text = await bkp(['list', 'cfg', '-c', config, '--now', NOW], { env });
    expect(text.code, text.stderr).toBe(0);
    for (const b of list.backups) {
      const line = text.stdout.split('\n').find((l) => l.includes(b.id));
      expect(line, b.id).toBeDefined();
      expect(line).toContain(b.kind === 'on_demand' ? 'on-demand' : 'scheduled');
      expect(line).toMatch(/\d+(\.\d+)? (B|kB|KiB|MB|MiB)/);
      for (const reason of b.kept_by) expect(line).toContain(reason);
    }
    expect(text.stdout.split('\n').find((l) => l.includes('2026-06-28T03:10'))).toContain('8h 50m');

    // Restore the April monthly backup into a new data directory and serve it with a new member.
    const apr30 = list.backups.find((b) => b.started_at.startsWith(RESTORE_DAY))!;
    const dataDir = path.join(t.dir, 'restored-apr30');
    const r = await bkp(['restore', 'cfg', '-c', config, '--backup', RESTORE_DAY, '--to-dir', dataDir], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Restoring cfg/snapshot backup ${apr30.id}`);
    expect(r.stdout).toContain(`etcd --name=restored --data-dir=${dataDir} --listen-client-urls=http://127.0.0.1:2379`);
    expect(r.stdout).toContain('--initial-cluster=restored=http://127.0.0.1:2380');
    // The runbook restores into a new instance: a data dir that holds data needs --force.
    const again = await bkp(['restore', 'cfg', '-c', config, '--backup', RESTORE_DAY, '--to-dir', dataDir], { env });
    expect(again.code).toBe(1);
    expect(again.stderr + again.stdout).toContain('--force');

    restored = await startEtcd({ dataDir, name: 'restored' });
    const keys = await dumpKeys(restored.endpoint);
    expect(keys).toEqual(onThatNight);
    expect(keys['config/current']).toBe(RESTORE_DAY);
    expect(keys['ondemand/last']).toBe('2026-04-15');
    expect(Object.keys(keys).filter((k) => k.startsWith('day/'))).toHaveLength(61 - 6); // Mar 1…Apr 30, 6 deleted
    expect(await dumpKeys(server.endpoint)).not.toEqual(onThatNight);

    const v = await bkp(['verify', '-c', config, '--deep'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(lastLine(v.stdout)).toBe('14 backups verified (deep).');
  }, 600_000);
});
