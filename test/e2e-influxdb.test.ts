import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { influxQuery, startInfluxd, writePoints, type InfluxServer } from './helpers/influxdb-server.js';
import { freePort } from './helpers/postgres-server.js';
import { bkp, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';

/** Rows of `SELECT * FROM m`, waiting out the few moments a freshly restored shard is "disabled". */
async function rows(server: InfluxServer, db: string): Promise<unknown[][]> {
  for (let i = 0; ; i++) {
    const r = await influxQuery(server, 'SELECT * FROM m', db);
    if (!r.error) return r.series?.[0]?.values ?? [];
    if (!/shard is disabled|engine is closed/.test(r.error) || i > 100) throw new Error(`SELECT * FROM m on ${db}: ${r.error}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function databases(server: InfluxServer): Promise<string[]> {
  const r = await influxQuery(server, 'SHOW DATABASES');
  return (r.series?.[0]?.values ?? []).map((v) => String(v[0]));
}

function ourTempDirs(): string[] {
  return readdirSync(tmpdir()).filter((f) => f.startsWith('bkp-influxdb-'));
}

/** The InfluxDB 1.x engine against a real influxd the test starts (DESIGN §8). */
describe('influxdb engine', () => {
  let server: InfluxServer;
  const t = tempDir();
  const config = path.join(t.dir, 'bkp.yaml');
  let env: Record<string, string>;
  let day1: unknown[][];
  const policy = (target: string) => `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly: { cron: "0 23 * * *", retention: { keep_daily: 6, keep_weekly: 4, keep_on_demand: 2 } }
targets:
${target}`;

  beforeAll(async () => {
    server = await startInfluxd();
    await writePoints(server, 'metrics', ['m,host=a v=1 1700000000', 'm,host=b v=2 1700000100', 'cpu,host=a load=0.5 1700000000']);
    await writePoints(server, 'other', ['m,host=z v=9 1700000000']);
    // influxd's own monitoring database appears after its first store interval (1s here).
    for (let i = 0; i < 100 && !(await databases(server)).includes('_internal'); i++) await new Promise((r) => setTimeout(r, 100));
    env = { INFLUX_RPC: server.rpcAddress, INFLUX_HTTP: server.httpUrl };
    writeFileSync(
      config,
      policy(`  metrics:
    engine: influxdb
    host: ${server.rpcAddress}
    http: ${server.httpUrl}
    databases: all
    schedule: nightly
`),
    );
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    t.cleanup();
  });

  it('backs up every database but _internal with influxd backup -portable, tarred, on two days', async () => {
    expect(await databases(server)).toContain('_internal');
    const before = ourTempDirs();
    const a = await bkp(['apply', '-c', config, '--auto-approve', '--now', '2026-11-20T23:05:00Z'], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const units = [...new Set(filesUnder(path.join(t.dir, 'backups', 'metrics')).map((f) => f.split('/')[0]))].sort();
    expect(units).toEqual(['metrics', 'other']);
    const files = filesUnder(path.join(t.dir, 'backups', 'metrics', 'metrics'));
    expect(files).toHaveLength(2);
    expect(files).toEqual(expect.arrayContaining([expect.stringMatching(/^20261120T230500Z-[0-9a-f]{12}\.tar\.gz$/), expect.stringMatching(/^20261120T230500Z-[0-9a-f]{12}\.manifest\.json$/)]));
    const m = JSON.parse(readFileSync(path.join(t.dir, 'backups', 'metrics', 'metrics', files.find((f) => f.endsWith('.manifest.json'))!), 'utf8'));
    expect(m).toMatchObject({ engine: 'influxdb', unit: 'metrics', facts: { database: 'metrics', host: server.rpcAddress, format: 'influxd-portable', shards: 1, files: 3, engine_compression: 'gzip' } });
    expect(m.facts.influxd_version).toMatch(/^1\.\d+/);
    expect(m.facts.bytes).toBeGreaterThan(0);
    day1 = await rows(server, 'metrics');
    expect(day1).toHaveLength(2);

    // The next day has more data.
    await writePoints(server, 'metrics', ['m,host=c v=3 1700000200']);
    const b = await bkp(['apply', '-c', config, '--auto-approve', '--now', '2026-11-21T23:05:00Z'], { env });
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(ourTempDirs()).toEqual(before); // the temporary backup folders are gone

    const l = await bkp(['list', 'metrics', '-c', config], { env });
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain('metrics/metrics');
    expect(l.stdout).toContain('metrics/other');
    expect(l.stdout.match(/2026-11-2[01]T23:05/g)?.length).toBeGreaterThanOrEqual(4);

    const v = await bkp(['verify', '-c', config, '--deep'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/influxd portable backup: \d{8}T\d{6}Z\.manifest, meta and 1 shard file\(s\) present \(metrics\)/);
    expect(v.stdout).toContain('4 backups verified (deep).');
  }, 120_000);

  it('restores a chosen day into a new database; over an existing database it refuses clearly', async () => {
    const r = await bkp(['restore', 'metrics', '-c', config, '--unit', 'metrics', '--backup', '2026-11-20', '--to-db', 'day1'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Restored metrics/metrics backup');
    expect(r.stdout).toContain(`into database "day1" on influxd ${server.rpcAddress}`);
    expect(r.stdout).toContain('restored 1 shard(s) of database "metrics" as "day1": 2 measurement(s)');
    expect(await rows(server, 'day1')).toEqual(day1);

    const latest = await bkp(['restore', 'metrics', '-c', config, '--unit', 'metrics', '--to', 'day2'], { env });
    expect(latest.code, latest.stdout + latest.stderr).toBe(0);
    expect(await rows(server, 'day2')).toEqual(await rows(server, 'metrics'));
    expect(await rows(server, 'day2')).toHaveLength(3);

    for (const args of [['--unit', 'metrics'], ['--unit', 'metrics', '--force'], ['--unit', 'metrics', '--to-db', 'day1']]) {
      const refused = await bkp(['restore', 'metrics', '-c', config, ...args], { env });
      expect(refused.code, args.join(' ')).toBe(1);
      const db = args.includes('day1') ? 'day1' : 'metrics';
      expect(refused.stderr, args.join(' ')).toContain(`database "${db}" already exists on influxd ${server.rpcAddress}: influxd restore -portable never overwrites a database; restore into a new one with --to-db NEW`);
    }
    expect(await rows(server, 'day1')).toEqual(day1);
  }, 120_000);

  it('fails clearly: unreachable RPC port (bounded), missing influxd, missing database', async () => {
    const dead = await freePort();
    const before = ourTempDirs();
    const dir = path.join(t.dir, 'errs');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'bkp.yaml');
    const cases = [
      { name: 'unreachable RPC port', fields: `host: 127.0.0.1:${dead}\n    http: ${server.httpUrl}\n    databases: [metrics]`, expected: `target metrics: cannot reach influxd's backup RPC service at 127.0.0.1:${dead}: connection refused` },
      { name: 'influxd_path wrong', fields: `host: ${server.rpcAddress}\n    databases: [metrics]\n    influxd_path: /nonexistent/influxd`, expected: 'target metrics: /nonexistent/influxd (from influxd_path) cannot be run: install the Debian package influxdb (apt-get install influxdb)' },
      { name: 'missing database', fields: `host: ${server.rpcAddress}\n    http: ${server.httpUrl}\n    databases: [nope]`, expected: `target metrics: database "nope" does not exist on influxd ${server.rpcAddress}` },
    ];
    for (const c of cases) {
      writeFileSync(file, policy(`  metrics:\n    engine: influxdb\n    ${c.fields}\n    schedule: nightly\n`));
      const t0 = Date.now();
      const a = await bkp(['apply', '-c', file, '--auto-approve'], { env });
      expect(a.code, c.name).toBe(1);
      expect(a.stdout + a.stderr, c.name).toContain(c.expected);
      expect(Date.now() - t0, c.name).toBeLessThan(20_000);
      expect(filesUnder(path.join(dir, 'backups')).filter((f) => !f.startsWith('runs/')), c.name).toEqual([]);
    }

    // A port that accepts and drops every connection: influxd retries forever; bkp stops it after a few tries.
    const net = await import('node:net');
    const dropper = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => dropper.listen(0, '127.0.0.1', r));
    const dropPort = (dropper.address() as { port: number }).port;
    writeFileSync(file, policy(`  metrics:\n    engine: influxdb\n    host: 127.0.0.1:${dropPort}\n    http: ${server.httpUrl}\n    databases: [metrics]\n    schedule: nightly\n`));
    const t0 = Date.now();
    const dropped = await bkp(['apply', '-c', file, '--auto-approve'], { env });
    dropper.close();
    expect(dropped.code).toBe(1);
    expect(dropped.stdout).toMatch(new RegExp(`target metrics: influxd backup of database "metrics" from 127\\.0\\.0\\.1:${dropPort}: cannot reach influxd's backup RPC service at 127\\.0\\.0\\.1:${dropPort}: \\S`)); // the reason varies with timing (reset, EOF…)
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(ourTempDirs().filter((d) => !before.includes(d))).toEqual([]);

    // databases: all with the HTTP API unreachable: the plan warns (discovery failed), takes
    // nothing, and exits 1 so CI notices; apply does the same.
    writeFileSync(file, policy(`  metrics:\n    engine: influxdb\n    host: ${server.rpcAddress}\n    http: http://127.0.0.1:${dead}\n    databases: all\n    schedule: nightly\n`));
    const p = await bkp(['plan', '-c', file], { env });
    expect(p.stdout + p.stderr).toContain(`InfluxDB HTTP API at http://127.0.0.1:${dead}: connection refused (set \`http:\` on the target when the HTTP API is not on port 8086 of the RPC host)`);
    expect(p.code).toBe(1);
    const a = await bkp(['apply', '-c', file, '--auto-approve'], { env });
    expect(a.code).toBe(1);
  }, 120_000);
});
