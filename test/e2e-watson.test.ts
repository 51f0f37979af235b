import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { startPostgres, type PgServer } from './helpers/postgres-server.js';
import { dumpRows, seedStore, sql } from './helpers/pg-data.js';
import { bkp, lastLine, ROOT, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';

/**
 * Seed 002 (Watson Assistant on PostgreSQL) end to end with examples/watson-assistant-postgres.yaml
 * as shipped: five weeks of nightly applies against a real PostgreSQL, the data changing every
 * day; exactly the runbook's 6 daily + 4 weekly (Sunday) backups remain, 30 run records are kept,
 * and the oldest kept backup restores into a new database row for row.
 */
describe('seed 002: Watson Assistant store on PostgreSQL', () => {
  let server: PgServer;
  const t = tempDir();
  const config = path.join(t.dir, 'examples', 'watson-assistant-postgres.yaml');
  let env: Record<string, string>;
  const DB = 'conversation_pprd_store';

  beforeAll(async () => {
    server = await startPostgres();
    await sql(server.url(), `CREATE DATABASE ${DB}`);
    await seedStore(server.url(DB));
    await sql(server.url(DB), 'CREATE TABLE nightly_marks (day date PRIMARY KEY, note text)');
    cpSync(path.join(ROOT, 'examples', 'watson-assistant-postgres.yaml'), config);
    env = { STORE_PG_HOST: '127.0.0.1', STORE_PG_PORT: String(server.port), STORE_PG_USER: 'postgres', STORE_PG_PASSWORD: server.password };
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    t.cleanup();
  });

  it('five weeks of nightly backups leave exactly 6 daily + 4 weekly, and the oldest restores row for row', async () => {
    const start = Date.UTC(2026, 9, 19); // Monday 2026-10-19
    const snapshots = new Map<string, Record<string, unknown[]>>();
    for (let day = 0; day < 35; day++) {
      const date = new Date(start + day * 86_400_000).toISOString().slice(0, 10);
      // The day's work: a mark, and some churn in the existing tables.
      await sql(server.url(DB), 'INSERT INTO nightly_marks VALUES ($1, $2)', [date, `night ${day}`]);
      await sql(server.url(DB), `UPDATE intents SET examples = jsonb_set(examples, '{day}', to_jsonb($1::text)) WHERE id % 35 = $2`, [date, day]);
      if (date === '2026-11-01') snapshots.set(date, await dumpRows(server.url(DB)));
      const a = await bkp(['apply', '-c', config, '--auto-approve', '--now', `${date}T23:05:00Z`], { env });
      expect(a.code, `${date}\n${a.stdout}\n${a.stderr}`).toBe(0);
    }
    const list = JSON.parse((await bkp(['list', 'store', '-c', config, '--json'], { env })).stdout) as { backups: { id: string; started_at: string; kept_by: string[] }[] };
    const days = list.backups.map((b) => b.started_at.slice(0, 10)).sort();
    // The last night is Sunday 2026-11-22. Daily: Nov 17–22. Weekly: the Sundays Nov 22, 15, 8, 1.
    expect(days).toEqual(['2026-11-01', '2026-11-08', '2026-11-15', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20', '2026-11-21', '2026-11-22']);
    expect(filesUnder(path.join(t.dir, 'backups', 'store', DB)).filter((f) => !f.endsWith('.manifest.json'))).toHaveLength(9);

    const runs = await bkp(['list', '--runs', '-c', config], { env });
    expect(runs.stdout.trim().split('\n').filter((l) => / succeeded /.test(l))).toHaveLength(30);

    const oldest = list.backups.find((b) => b.started_at.startsWith('2026-11-01'))!;
    expect(oldest.kept_by).toEqual(['weekly snapshot']);
    const r = await bkp(['restore', 'store', '-c', config, '--unit', DB, '--backup', '2026-11-01', '--to', 'restored_nov1'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Restoring store/${DB} backup ${oldest.id}`);
    expect(await dumpRows(server.url('restored_nov1'))).toEqual(snapshots.get('2026-11-01'));
    const marks = await sql<{ n: string }>(server.url('restored_nov1'), 'SELECT count(*) AS n FROM nightly_marks');
    expect(Number(marks[0]!.n)).toBe(14); // Oct 19 … Nov 1

    const v = await bkp(['verify', '-c', config, '--deep'], { env });
    expect(lastLine(v.stdout)).toBe('9 backups verified (deep).');
  }, 300_000);
});
