import { afterAll, describe, expect, it } from 'vitest';
import { bkp, lastLine } from './helpers/cli.js';
import { filesPolicy, workspace } from './helpers/workspace.js';

interface ListedBackup {
  id: string;
  kind: string;
  started_at: string;
  kept_by: string[];
}

/**
 * Five weeks of nightly `bkp apply` runs with a fixed clock, plus two on-demand backups, through
 * the real CLI and real local storage: what remains is exactly what the retention names.
 */
describe('five weeks of simulated nightly applies', () => {
  const w = workspace(() => filesPolicy({ retention: '{ keep_daily: 6, keep_weekly: 4, keep_on_demand: 1 }' }));
  afterAll(() => w.cleanup());

  it('leaves exactly the daily, weekly and on-demand backups the policy keeps', async () => {
    const start = Date.UTC(2026, 9, 19, 23, 5); // Monday 2026-10-19 23:05 UTC
    for (let day = 0; day < 35; day++) {
      const now = new Date(start + day * 86_400_000).toISOString();
      const a = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', now]);
      expect(a.code, `${now}\n${a.stdout}\n${a.stderr}`).toBe(0);
      if (day === 15 || day === 22) {
        const od = await bkp(['backup', 'app', '-c', w.config, '--now', new Date(start + day * 86_400_000 + 3_600_000).toISOString()]);
        expect(od.code, od.stderr).toBe(0);
      }
      // Every apply leaves nothing to do at the same instant (apply is idempotent), except after
      // the second on-demand backup: the pool then holds 2 for keep_on_demand 1.
      const again = await bkp(['plan', '-c', w.config, '--detailed-exitcode', '--now', now]);
      expect(lastLine(again.stdout), `${now}\n${again.stdout}`).toBe(day === 22 ? 'Plan: 0 to create, 0 to change, 1 to delete.' : 'No changes.');
    }
    const list = await bkp(['list', 'app', '-c', w.config, '--json', '--now', '2026-11-22T23:10:00Z']);
    const backups = (JSON.parse(list.stdout) as { backups: ListedBackup[] }).backups;
    const days = (kind: string) => backups.filter((b) => b.kind === kind).map((b) => b.started_at.slice(0, 10)).sort();
    // Sunday 2026-11-22 is the last night. Daily: Nov 17..22. Weekly (ISO weeks, Monday start):
    // the newest of this week (Nov 22) and the Sundays ending the three weeks before.
    expect(days('scheduled')).toEqual(['2026-11-01', '2026-11-08', '2026-11-15', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20', '2026-11-21', '2026-11-22']);
    // The on-demand pool keeps only the newest (Nov 11, 00:05 UTC); the one of Nov 4 was pruned.
    expect(days('on_demand')).toEqual(['2026-11-11']);
    const byDay = Object.fromEntries(backups.map((b) => [`${b.kind} ${b.started_at.slice(0, 10)}`, b.kept_by]));
    expect(byDay['scheduled 2026-11-22']).toEqual(['daily snapshot', 'weekly snapshot']);
    expect(byDay['scheduled 2026-11-15']).toEqual(['weekly snapshot']);
    expect(byDay['scheduled 2026-11-17']).toEqual(['daily snapshot']);
    expect(byDay['on_demand 2026-11-11']).toEqual(['on-demand snapshot (keep_on_demand 1)']);

    const verify = await bkp(['verify', 'app', '-c', w.config, '--deep']);
    expect(verify.code, verify.stdout).toBe(0);
    expect(lastLine(verify.stdout)).toBe('10 backups verified (deep).');
  }, 240_000);
});
