import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startPostgres, type PgServer } from './helpers/postgres-server.js';
import { dumpRows, seedStore, sql } from './helpers/pg-data.js';
import { bkp, startBkp, tempDir } from './helpers/cli.js';

/**
 * Issue 9 through the real CLI against a real PostgreSQL 15: `jobs` (pg_dump -Fc with one job,
 * -Fd -j N streamed as a tar with more) × `compression` (gzip by pg_dump; zstd and lz4 in the
 * stream, since pg_dump 15 knows only gzip; none), restore with -j, verify --deep, the manifest's
 * facts, and the temporary folder of directory dumps removed after success, failure and kill.
 */
describe('postgres: parallel dumps and compression', () => {
  let server: PgServer;
  const t = tempDir();
  let env: Record<string, string>;
  const temp = path.join(t.dir, 'tmp');
  const conn = `{ host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }`;
  const policy = (targets: string) => `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly: { cron: "0 23 * * *", retention: { keep_daily: 6, keep_on_demand: 20 } }
targets:
${targets}`;
  const target = (name: string, extra: string, db = 'store') => `  ${name}:
    engine: postgres
    connection: ${conn}
    databases: [${db}]
    temp_dir: ./tmp
    schedule: nightly
${extra}`;
  /** Large objects next to the tables, so that the directory format's blob files are covered too. */
  const largeObjects = async (db: string) => (await sql<{ data: string }>(server.url(db), `SELECT encode(lo_get(oid), 'escape') AS data FROM pg_largeobject_metadata ORDER BY oid`)).map((r) => r.data);
  const leftovers = () => (existsSync(temp) ? readdirSync(temp) : []);
  const manifestOf = (dir: string) => {
    const files = readdirSync(dir);
    const m = JSON.parse(readFileSync(path.join(dir, files.find((f) => f.endsWith('.manifest.json'))!), 'utf8')) as { artifact: string; compression: string; facts: Record<string, unknown> };
    return { m, artifact: path.join(dir, m.artifact) };
  };

  beforeAll(async () => {
    server = await startPostgres();
    await sql(server.url(), 'CREATE DATABASE store');
    await seedStore(server.url('store'));
    await sql(server.url('store'), `SELECT lo_from_bytea(0, convert_to('large object ' || g, 'UTF8')) FROM generate_series(1, 3) g`);
    env = { PG_PASSWORD: server.password, PG_PORT: String(server.port) };
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    t.cleanup();
  });

  const combos = [1, 2].flatMap((jobs) => (['gzip', 'zstd', 'lz4', 'none'] as const).map((compression) => ({ jobs, compression })));
  const magic: Record<string, (b: Buffer) => boolean> = {
    custom: (b) => b.subarray(0, 5).toString() === 'PGDMP',
    directory: (b) => b.subarray(257, 262).toString() === 'ustar',
    zstd: (b) => b.readUInt32LE(0) === 0xfd2fb528,
    lz4: (b) => b.readUInt32LE(0) === 0x184d2204,
  };

  it.each(combos)('jobs $jobs, compression $compression: backup, verify --deep, restore with -j, same data', async ({ jobs, compression }) => {
    const name = `j${jobs}-${compression}`;
    const dir = path.join(t.dir, name);
    mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'bkp.yaml');
    writeFileSync(config, policy(target('store', `    jobs: ${jobs}\n    compression: ${compression}\n`)).replace('./tmp', '../tmp'));

    const b = await bkp(['backup', 'store', '-c', config], { env });
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const { m, artifact } = manifestOf(path.join(dir, 'backups', 'store', 'store'));
    const format = jobs === 1 ? 'custom' : 'directory';
    const streamed = compression === 'zstd' || compression === 'lz4';
    expect(m.compression).toBe('none'); // the engine compressed, or compression: none was asked for
    expect(m.facts).toMatchObject({
      format,
      jobs,
      compression,
      compressed_by: compression === 'none' ? 'none' : streamed ? 'stream' : 'pg_dump',
      engine_compression: compression,
      table_count: 3,
    });
    expect(m.facts.compression_level).toBe({ gzip: 6, zstd: 1, lz4: 1, none: undefined }[compression]);
    if (streamed) expect(m.facts.compressor).toMatch(new RegExp(`^${compression} \\d+\\.\\d+`));
    const ext = `${jobs === 1 ? 'dump' : 'tar'}${compression === 'zstd' ? '.zst' : compression === 'lz4' ? '.lz4' : ''}`;
    expect(path.basename(artifact)).toMatch(new RegExp(`\\.${ext.replace('.', '\\.')}$`));
    const head = readFileSync(artifact).subarray(0, 512);
    expect(magic[streamed ? compression : format]!(head), `${name}: ${head.subarray(0, 8).toString('hex')}`).toBe(true);
    if (format === 'directory') {
      // A plain tar that the standard tools read: toc.dat and one data file per table, compressed by pg_dump for gzip.
      const list = execFileSync('sh', ['-c', streamed ? `${compression} -dc < "$1" | tar -t` : 'tar -tf "$1"', 'sh', artifact], { encoding: 'utf8' }).trim().split('\n');
      expect(list).toContain('toc.dat');
      expect(list.filter((f) => /^\d+\.dat(\.gz)?$/.test(f))).toHaveLength(3);
      if (compression === 'gzip') expect(list.filter((f) => f.endsWith('.dat.gz')).length).toBeGreaterThanOrEqual(3);
      expect(list.some((f) => /^blob_\d+\.dat/.test(f))).toBe(true);
      expect(m.facts.temp_peak_bytes).toBeGreaterThan(0);
    }
    expect(leftovers()).toEqual([]);

    const v = await bkp(['verify', 'store', '-c', config, '--deep'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const via = streamed ? `, ${compression} stream` : '';
    if (format === 'custom') expect(v.stdout).toMatch(new RegExp(`pg_dump custom archive${via}: \\d+ TOC entries, 3 with table data`));
    else expect(v.stdout).toMatch(new RegExp(`pg_dump directory archive \\(tar${via}\\): \\d+ TOC entries, 3 with table data, every data file present \\(\\d+ files, \\d+ bytes\\)`));

    const db = `copy_${jobs}_${compression}`;
    const r = await bkp(['restore', 'store', '-c', config, '--to', db], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`created the database, 3 tables restored${format === 'directory' ? ` from the directory format with ${jobs} jobs` : ''}`);
    expect(await dumpRows(server.url(db))).toEqual(await dumpRows(server.url('store')));
    expect(await largeObjects(db)).toEqual(await largeObjects('store'));
    expect(leftovers()).toEqual([]);
  }, 60_000);

  it('by default: as many jobs as cores, at most the tables; zstd level 1', async () => {
    const dir = path.join(t.dir, 'defaults');
    mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'bkp.yaml');
    await sql(server.url(), 'CREATE DATABASE onetable');
    await sql(server.url('onetable'), 'CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 100)');
    writeFileSync(config, policy(target('store', '') + target('single', '', 'onetable')).replaceAll('./tmp', '../tmp'));
    for (const [name, tables] of [
      ['store', 3],
      ['single', 1],
    ] as const) {
      const b = await bkp(['backup', name, '-c', config], { env });
      expect(b.code, b.stdout + b.stderr).toBe(0);
      const jobs = Math.min(availableParallelism(), tables);
      const { m } = manifestOf(path.join(dir, 'backups', name, name === 'store' ? 'store' : 'onetable'));
      expect(m.facts).toMatchObject({ jobs, format: jobs === 1 ? 'custom' : 'directory', compression: 'zstd', compression_level: 1, compressed_by: 'stream' });
    }
  }, 60_000);

  it('a failed dump and a killed bkp leave no temporary folder behind', async () => {
    const dir = path.join(t.dir, 'failures');
    mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'bkp.yaml');
    writeFileSync(config, policy(target('store', '    jobs: 2\n')).replace('./tmp', '../tmp'));
    // An exclusive lock makes pg_dump wait at the start, with its folder created, for as long as we like.
    const blocker = new pg.Client({ connectionString: server.url('store') });
    await blocker.connect();
    const waitingDump = async (): Promise<number> => {
      for (let i = 0; i < 200; i++) {
        const rows = await sql<{ pid: number }>(server.url(), `SELECT pid FROM pg_stat_activity WHERE application_name = 'bkp' AND wait_event_type = 'Lock'`);
        if (rows[0]) return rows[0].pid;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('pg_dump never waited for the lock');
    };
    try {
      // 1. The dump fails (its connection is terminated by the server): bkp fails and cleans up.
      await blocker.query('BEGIN; LOCK TABLE intents IN ACCESS EXCLUSIVE MODE');
      const running = bkp(['backup', 'store', '-c', config], { env });
      const pid = await waitingDump();
      expect(leftovers().filter((f) => f.startsWith('bkp-pg-'))).toHaveLength(1);
      await sql(server.url(), 'SELECT pg_terminate_backend($1)', [pid]);
      const failed = await running;
      expect(failed.code).toBe(1);
      expect(failed.stdout).toMatch(/target store: pg_dump of database "store" on 127\.0\.0\.1:\d+ failed \(exit code 1\): .*terminat/);
      expect(leftovers()).toEqual([]);
      expect(readdirSync(path.join(dir, 'backups', 'store', 'store')).filter((f) => !f.startsWith('.'))).toEqual([]);

      // 2. bkp itself is stopped (SIGTERM, as a scheduler's timeout does): the folder goes too, and pg_dump with it.
      const child = startBkp(['backup', 'store', '-c', config], { env });
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
      await waitingDump();
      child.kill('SIGTERM');
      expect(await exited).toBe('SIGTERM');
      expect(leftovers()).toEqual([]);
      await blocker.query('ROLLBACK');
      for (let i = 0; i < 50; i++) {
        const rows = await sql(server.url(), `SELECT pid FROM pg_stat_activity WHERE application_name = 'bkp'`);
        if (rows.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await sql(server.url(), `SELECT pid FROM pg_stat_activity WHERE application_name = 'bkp'`)).toEqual([]);

      // 3. A folder left by a bkp killed with -9 (its process is gone) is removed by the next directory dump.
      mkdirSync(temp, { recursive: true });
      const stale = `bkp-pg-${execFileSync('hostname', { encoding: 'utf8' }).trim().replace(/[^A-Za-z0-9.-]/g, '_')}-999999999-abcdef`;
      mkdirSync(path.join(temp, stale, 'dump'), { recursive: true });
      writeFileSync(path.join(temp, stale, 'dump', '1234.dat'), 'x');
      const ok = await bkp(['backup', 'store', '-c', config], { env });
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      expect(leftovers()).toEqual([]);
    } finally {
      await blocker.end().catch(() => undefined);
    }
  }, 60_000);

  it('lz4 or zstd with neither a pg_dump 16+ nor the program: a clear error, nothing written; restore says what it needs', async () => {
    const dir = path.join(t.dir, 'missing-tool');
    mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'bkp.yaml');
    writeFileSync(config, policy(target('store', '    jobs: 1\n    compression: lz4\n') + target('zstore', '    jobs: 2\n    compression: zstd\n')).replaceAll('./tmp', '../tmp'));
    // pg_dump is still found (Debian's /usr/lib/postgresql/15/bin); lz4 and zstd are not on this PATH.
    const noTools = { ...env, PATH: path.join(dir, 'empty-bin') };
    const a = await bkp(['backup', 'store', '-c', config], { env: noTools });
    expect(a.code).toBe(1);
    expect(a.stdout).toMatch(
      /target store: compression lz4 needs pg_dump 16 or newer \(this one is 15\.\d+, \S+pg_dump\) or the lz4 program to compress the stream, and neither is available: install lz4 \(Debian\/Ubuntu: apt-get install lz4\), set pg_dump_path to a pg_dump 16\+, or choose compression: gzip/,
    );
    expect(existsSync(path.join(dir, 'backups', 'store'))).toBe(false);

    // A zstd backup taken with the program there, restored and verified without it.
    const b = await bkp(['backup', 'zstore', '-c', config], { env });
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const r = await bkp(['restore', 'zstore', '-c', config, '--to', 'nozstd'], { env: noTools });
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toContain('the backup was compressed with zstd by bkp and reading it needs the zstd program: install zstd (Debian/Ubuntu: apt-get install zstd)');
    const v = await bkp(['verify', 'zstore', '-c', config, '--deep'], { env: noTools });
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('reading it needs the zstd program');
    expect(leftovers()).toEqual([]);
  }, 60_000);

  it('compression_level out of range for the method is refused by the policy check', async () => {
    const dir = path.join(t.dir, 'levels');
    mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'bkp.yaml');
    writeFileSync(config, policy(target('store', '    compression: gzip\n    compression_level: 12\n') + target('plain', '    compression: none\n    compression_level: 3\n')));
    const a = await bkp(['validate', '-c', config], { env });
    expect(a.code).toBe(1);
    expect(a.stdout + a.stderr).toContain('targets.store.compression_level: must be at most 9');
    expect(a.stdout + a.stderr).toContain('targets.plain.compression_level: must be left out with compression: none (it takes no level)');
  });
});
