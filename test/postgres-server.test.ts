import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from './helpers/postgres-server.js';

function connectable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('startPostgres (the test helper)', () => {
  let server: PgServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('starts a real server with password auth, and stop() closes the port and removes its folder', async () => {
    server = await startPostgres({ superPassword: 's3cret p@ss/word' });
    expect(server.host).toBe('127.0.0.1');
    expect(server.user).toBe('postgres');
    expect(server.url()).toBe(`postgresql://postgres:s3cret%20p%40ss%2Fword@127.0.0.1:${server.port}/postgres`);
    expect(existsSync(path.join(server.binDir, 'pg_ctl'))).toBe(true);

    const client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    try {
      await client.query('CREATE DATABASE app');
    } finally {
      await client.end();
    }
    const app = new pg.Client({ connectionString: server.url('app') });
    await app.connect();
    try {
      await app.query('CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)');
      await app.query("INSERT INTO items (name) VALUES ('alpha'), ('beta')");
      const { rows } = await app.query<{ name: string }>('SELECT name FROM items ORDER BY id');
      expect(rows.map((r) => r.name)).toEqual(['alpha', 'beta']);
      const enc = await app.query<{ server_encoding: string }>('SHOW server_encoding');
      expect(enc.rows[0]!.server_encoding).toBe('UTF8');
    } finally {
      await app.end();
    }

    const wrong = new pg.Client({ host: server.host, port: server.port, user: 'postgres', password: 'wrong', database: 'postgres' });
    const err = await wrong.connect().then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    await wrong.end().catch(() => undefined);
    expect(err?.code).toBe('28P01');

    const { port, dir } = server;
    expect(existsSync(dir)).toBe(true);
    expect(await connectable(port)).toBe(true);
    await server.stop();
    await server.stop(); // idempotent
    server = undefined;
    expect(await connectable(port)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it('gives every call its own server', async () => {
    const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.dir).not.toBe(b.dir);
      expect(a.password).not.toBe(b.password);
      for (const s of [a, b]) {
        const c = new pg.Client({ connectionString: s.url() });
        await c.connect();
        const { rows } = await c.query<{ port: string }>("SELECT current_setting('port') AS port");
        expect(Number(rows[0]!.port)).toBe(s.port);
        await c.end();
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('says how to install PostgreSQL when the binaries are missing', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'bkp-nopg-'));
    const saved = process.env.BKP_TEST_PG_BIN;
    process.env.BKP_TEST_PG_BIN = empty;
    try {
      const err = await startPostgres().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toContain(empty);
      expect(err!.message).toContain('initdb');
      expect(err!.message).toContain('apt-get install postgresql-15');
      expect(err!.message).toContain('bash scripts/ensure-test-deps.sh');
    } finally {
      if (saved === undefined) delete process.env.BKP_TEST_PG_BIN;
      else process.env.BKP_TEST_PG_BIN = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
