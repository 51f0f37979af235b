import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startPostgres, type PgServer } from './helpers/postgres-server.js';
import { dumpRows, seedStore, sql } from './helpers/pg-data.js';
import { bkp, lastLine, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';

/** The PostgreSQL engine against a real server the test starts (DESIGN §8). */
describe('postgres engine', () => {
  let server: PgServer;
  const t = tempDir();
  let env: Record<string, string>;
  const config = path.join(t.dir, 'bkp.yaml');
  const policy = (target: string) => `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly: { cron: "0 23 * * *", retention: { keep_daily: 6, keep_weekly: 4, keep_on_demand: 2 } }
targets:
${target}`;

  beforeAll(async () => {
    server = await startPostgres();
    await sql(server.url(), 'CREATE DATABASE store');
    await sql(server.url(), 'CREATE DATABASE "odd name/1"');
    await seedStore(server.url('store'));
    env = { PG_PASSWORD: server.password, PG_PORT: String(server.port) };
    writeFileSync(
      config,
      policy(`  store:
    engine: postgres
    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }
    databases: [store]
    jobs: 1                # pg_dump -Fc, gzip inside: the format of issue 3 (test/postgres-parallel.test.ts covers the others)
    compression: gzip
    schedule: nightly
`),
    );
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    t.cleanup();
  });

  it('backs up with pg_dump -Fc, streamed, and records the server facts in the manifest', async () => {
    const a = await bkp(['apply', '-c', config, '--auto-approve', '--now', '2026-11-21T23:05:00Z'], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const files = filesUnder(path.join(t.dir, 'backups', 'store', 'store'));
    expect(files).toEqual([expect.stringMatching(/^20261121T230500Z-[0-9a-f]{12}\.dump$/), expect.stringMatching(/\.manifest\.json$/)].sort());
    const m = JSON.parse(readFileSync(path.join(t.dir, 'backups', 'store', 'store', files.find((f) => f.endsWith('.manifest.json'))!), 'utf8'));
    expect(m).toMatchObject({ engine: 'postgres', unit: 'store', compression: 'none', facts: { database: 'store', table_count: 3, format: 'custom', server_major: 15, engine_compression: 'gzip' } });
    expect(m.facts.server_version).toMatch(/^15\.\d+/);
    expect(m.facts.pg_dump_version).toMatch(/^\d+\.\d+/);
    expect(m.facts.database_size).toBeGreaterThan(100_000);
    const artifact = readFileSync(path.join(t.dir, 'backups', 'store', 'store', m.artifact));
    expect(artifact.subarray(0, 5).toString()).toBe('PGDMP'); // the custom format's magic

    const v = await bkp(['verify', '-c', config, '--deep'], { env });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/OK {6}local: store\/store [0-9a-f]{12} \(2026-11-21T23:05:00.000Z\) — pg_dump custom archive: \d+ TOC entries, 3 with table data/);
    expect(a.stdout + a.stderr + v.stdout).not.toContain(server.password);
  });

  it('restores into a new database; over a database with tables only with --force, after a safety backup', async () => {
    const fresh = await bkp(['restore', 'store', '-c', config, '--to', 'store_copy'], { env });
    expect(fresh.code, fresh.stdout + fresh.stderr).toBe(0);
    expect(fresh.stdout).toContain('Restored store/store backup');
    expect(fresh.stdout).toContain('created the database, 3 tables restored');
    expect(await dumpRows(server.url('store_copy'))).toEqual(await dumpRows(server.url('store')));

    // Break the live database, then restore over it.
    await sql(server.url('store'), `DELETE FROM intents WHERE id % 2 = 0; UPDATE workspaces SET name = 'broken'`);
    const broken = await dumpRows(server.url('store'));
    const refused = await bkp(['restore', 'store', '-c', config], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`database "store" on 127.0.0.1:${server.port} (3 tables) already holds data and restoring overwrites it: run again with --force (bkp first takes a safety backup)`);

    const forced = await bkp(['restore', 'store', '-c', config, '--force', '--now', '2026-11-22T10:00:00Z'], { env });
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    const safetyId = /Safety backup ([0-9a-f]{12}) of store\/store taken/.exec(forced.stdout)?.[1];
    expect(safetyId, forced.stdout).toBeDefined();
    expect(await dumpRows(server.url('store'))).toEqual(await dumpRows(server.url('store_copy')));

    // The safety backup holds the broken state: restoring it elsewhere gives it back.
    const back = await bkp(['restore', 'store', '-c', config, '--backup', safetyId!, '--to', 'store_broken'], { env });
    expect(back.code, back.stderr).toBe(0);
    expect(await dumpRows(server.url('store_broken'))).toEqual(broken);
  });

  it('fails clearly, naming target, server and database, with secrets masked', async () => {
    const cases: { name: string; target: string; env?: Record<string, string>; expected: string }[] = [
      {
        name: 'wrong password',
        target: `  store:\n    engine: postgres\n    connection: "postgres://postgres:\${env:PG_PASSWORD}@127.0.0.1:\${env:PG_PORT}/postgres"\n    databases: [store]\n    schedule: nightly\n`,
        env: { PG_PASSWORD: 'not-the-password' },
        expected: `target store: cannot connect to PostgreSQL at 127.0.0.1:${server.port}, database "store": password authentication failed for user "postgres"`,
      },
      {
        name: 'missing database',
        target: `  store:\n    engine: postgres\n    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }\n    databases: [nope]\n    schedule: nightly\n`,
        expected: `target store: database "nope" does not exist on 127.0.0.1:${server.port}`,
      },
      {
        name: 'nothing listening',
        target: `  store:\n    engine: postgres\n    connection: { host: 127.0.0.1, port: 1, user: postgres, password: "\${env:PG_PASSWORD}" }\n    databases: [store]\n    schedule: nightly\n`,
        expected: 'target store: cannot connect to PostgreSQL at 127.0.0.1:1, database "store": connection refused',
      },
      {
        name: 'pg_dump not installed',
        target: `  store:\n    engine: postgres\n    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }\n    databases: [store]\n    pg_dump_path: /nonexistent/bin/pg_dump\n    schedule: nightly\n`,
        expected: 'target store: /nonexistent/bin/pg_dump (from pg_dump_path) cannot be run',
      },
      {
        name: 'pg_dump older than the server',
        target: `  store:\n    engine: postgres\n    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }\n    databases: [store]\n    pg_dump_path: ./old/pg_dump\n    schedule: nightly\n`,
        expected: 'target store: pg_dump 9.6 (',
      },
    ];
    // A server that accepts connections and never answers: the wait is bounded by connect_timeout.
    const net = await import('node:net');
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as { port: number }).port;
    cases.push({
      name: 'a server that never answers',
      target: `  store:\n    engine: postgres\n    connection: { host: 127.0.0.1, port: ${silentPort}, user: postgres, password: "\${env:PG_PASSWORD}" }\n    connect_timeout: 2\n    databases: [store]\n    schedule: nightly\n`,
      expected: `target store: cannot connect to PostgreSQL at 127.0.0.1:${silentPort}, database "store": timed out after 2s`,
    });
    // A passfile (libpq format) instead of a password in the environment works, and a wrong one says so.
    writeFileSync(path.join(t.dir, 'errs-pgpass'), `127.0.0.1:*:*:postgres:wrong-${server.password}\n`, { mode: 0o600 });
    cases.push({
      name: 'passfile with a wrong password',
      target: `  store:\n    engine: postgres\n    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, passfile: ../errs-pgpass }\n    databases: [store]\n    schedule: nightly\n`,
      expected: `target store: cannot connect to PostgreSQL at 127.0.0.1:${server.port}, database "store": password authentication failed for user "postgres"`,
    });
    const old = path.join(t.dir, 'errs', 'old');
    (await import('node:fs')).mkdirSync(old, { recursive: true });
    writeFileSync(path.join(old, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n');
    chmodSync(path.join(old, 'pg_dump'), 0o755);
    for (const c of cases) {
      const file = path.join(t.dir, 'errs', 'bkp.yaml');
      writeFileSync(file, policy(c.target));
      const a = await bkp(['apply', '-c', file, '--auto-approve'], { env: { ...env, ...c.env } });
      expect(a.code, c.name).toBe(1);
      expect(a.stdout, c.name).toContain(c.expected);
      expect(a.stdout + a.stderr, c.name).not.toContain(c.env?.PG_PASSWORD ?? server.password);
      if (c.name === 'pg_dump older than the server') {
        expect(a.stdout).toContain('is older than the server (PostgreSQL 15) and cannot dump it: install the PostgreSQL 15 client (Debian/Ubuntu: apt-get install postgresql-client-15), or set pg_dump_path to a pg_dump 15 or newer');
      }
      // Nothing half-written is left as a backup.
      expect(filesUnder(path.join(t.dir, 'errs', 'backups')).filter((f) => !f.startsWith('runs/'))).toEqual([]);
    }
    silent.close();

    // The same passfile with the right password: the backup works without PGPASSWORD anywhere.
    writeFileSync(path.join(t.dir, 'errs-pgpass'), `127.0.0.1:*:*:postgres:${server.password}\n`, { mode: 0o600 });
    writeFileSync(path.join(t.dir, 'errs', 'bkp.yaml'), policy(cases[cases.length - 1]!.target));
    const ok = await bkp(['apply', '-c', path.join(t.dir, 'errs', 'bkp.yaml'), '--auto-approve'], { env: { PG_PORT: String(server.port) } });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
  }, 120_000);

  it('databases: all finds every database; a failing one does not stop the others, is not pruned, and its error is kept', async () => {
    const dir = path.join(t.dir, 'all');
    const file = path.join(dir, 'bkp.yaml');
    (await import('node:fs')).mkdirSync(dir, { recursive: true });
    writeFileSync(
      file,
      policy(`  everything:
    engine: postgres
    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }
    databases: all
    globals: true
    schedule: nightly
  broken:
    engine: postgres
    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }
    databases: [store, gone]
    schedule: { cron: "0 23 * * *", retention: { keep_last: 1 } }
`),
    );
    const first = await bkp(['apply', '-c', file, '--auto-approve', '--now', '2026-11-20T23:05:00Z'], { env });
    expect(first.code).toBe(1); // "gone" does not exist
    const units = filesUnder(path.join(dir, 'backups', 'everything')).map((f) => f.split('/')[0]);
    expect([...new Set(units)].sort()).toEqual(['%40globals'.replace('%40', '@'), 'odd%20name%2F1', 'postgres', 'store', 'store_broken', 'store_copy'].sort());
    expect(filesUnder(path.join(dir, 'backups', 'broken', 'store'))).toHaveLength(2);

    const second = await bkp(['apply', '-c', file, '--auto-approve', '--now', '2026-11-21T23:05:00Z'], { env });
    expect(second.code).toBe(1);
    expect(second.stdout).toContain('broken/gone: backup: FAILED');
    expect(second.stdout).toContain('target broken: database "gone" does not exist');
    const runs = await bkp(['list', '--runs', '-c', file], { env });
    expect(runs.stdout).toMatch(/failed\s+apply\s+broken,everything/);
    expect(runs.stdout).toContain('database "gone" does not exist');
    // keep_last 1 pruned the older store backup of "broken" (its own backup succeeded).
    expect(filesUnder(path.join(dir, 'backups', 'broken', 'store'))).toHaveLength(2);
    const globals = filesUnder(path.join(dir, 'backups', 'everything', '@globals')).find((f) => f.endsWith('.sql.gz'));
    expect(globals).toBeDefined();
    const v = await bkp(['verify', 'everything', '-c', file, '--deep'], { env });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/globals SQL: \d+ lines/);
    expect(lastLine(v.stdout)).toBe('12 backups verified (deep).');
  }, 120_000);
});
