import { describe, expect, it } from 'vitest';
import { makePlan } from '../src/planner/plan.js';
import type { Action, CopyAction, ObservedState, PlanOptions, PruneAction } from '../src/planner/types.js';
import type { Policy } from '../src/policy/types.js';
import { backup, nightly, observed, policyWith } from './helpers/fixtures.js';

const NOW = new Date('2026-11-21T23:30:00Z');
const plan = (p: Policy, o: ObservedState, opts: PlanOptions = {}, now = NOW) => makePlan(p, o, now, opts, 'test');
const kinds = (actions: Action[]) => actions.map((a) => `${a.op} ${a.kind}`);
const prunedDays = (actions: Action[]) => actions.filter((a): a is PruneAction => a.kind === 'prune').map((a) => a.before.started_at.slice(0, 10));

describe('planner: backups', () => {
  const cases: { name: string; backups: ReturnType<typeof backup>[]; now?: string; expect: string[] }[] = [
    { name: 'first run backs up', backups: [], expect: ['create backup'] },
    { name: 'already backed up after the last fire: nothing', backups: [backup('2026-11-21T23:00:00Z')], expect: [] },
    { name: 'missed a week: one catch-up backup', backups: [backup('2026-11-14T23:00:00Z')], expect: ['create backup'] },
    { name: 'an on-demand backup does not satisfy the schedule', backups: [backup('2026-11-20T23:00:00Z'), backup('2026-11-21T23:10:00Z', { kind: 'on_demand' })], expect: ['create backup'] },
  ];
  it.each(cases)('$name', (c) => {
    const p = plan(policyWith(), observed(c.backups));
    expect(kinds(p.actions)).toEqual(c.expect);
  });

  it('the reason says why', () => {
    const p = plan(policyWith(), observed([backup('2026-11-20T23:00:00Z')]));
    expect(p.actions[0]!.reason).toBe('due: last scheduled backup 2026-11-20T23:00Z, schedule 0 23 * * * (UTC) fired 2026-11-21T23:00Z');
  });

  it('no backup while another apply holds the target lock', () => {
    const o = observed([]);
    o.storages[0]!.locks.push({ id: 'app', storage: 'local', holder: 'bkp apply run abc', host: 'h1', pid: 42, created_at: '2026-11-21T23:00:00Z', expires_at: '2026-11-21T23:05:00Z', units: ['app/files'] });
    const p = plan(policyWith(), o);
    expect(p.actions).toEqual([]);
    expect(p.notes[0]!.message).toMatch(/locked by bkp apply run abc \(host h1, pid 42\)/);
  });

  it('an on-demand request creates on-demand backups and prunes nothing', () => {
    const p = plan(policyWith({ retention: { keep_last: 1 } }), observed(nightly('2026-11-01', 20)), { onDemand: { target: 'app' } });
    expect(p.actions.map((a) => a.kind === 'backup' && a.backup_kind)).toEqual(['on_demand']);
  });

  it('only the --target targets', () => {
    const p = plan(policyWith({ targets: ['a', 'b'] }), observed([], { units: { a: ['files'], b: ['files'] } }), { targets: ['b'] });
    expect(p.actions.map((a) => a.target)).toEqual(['b']);
  });
});

describe('planner: retention', () => {
  it('counts the backup it is about to take, so the next plan has no changes', () => {
    // Six nightly backups Nov 15..20 (Sunday 15 to Friday 20), keep_daily 6: tonight's backup pushes out the oldest.
    const p = plan(policyWith({ retention: { keep_daily: 6 } }), observed(nightly('2026-11-15', 6)), {}, new Date('2026-11-21T23:30:00Z'));
    expect(kinds(p.actions)).toEqual(['create backup', 'delete prune']);
    expect(prunedDays(p.actions)).toEqual(['2026-11-15']);
    const prune = p.actions[1] as PruneAction;
    expect(prune.reason).toBe('prune: not kept by keep_daily 6');
    expect(prune.requires).toBe('backup.app.files');
  });

  it('keep_daily 6 + keep_weekly 4 after five weeks of nightly backups', () => {
    // Oct 18 (Sunday) .. Nov 20 (Friday) = 34 nightly backups; tonight Nov 21 (Saturday).
    const p = plan(policyWith(), observed(nightly('2026-10-18', 34)));
    const kept = new Set(nightly('2026-10-18', 34).map((b) => b.started_at.slice(0, 10)));
    for (const d of prunedDays(p.actions)) kept.delete(d);
    // daily: Nov 16..20 plus tonight; weekly (ISO, Monday start): tonight's week (Nov 16-22), then
    // the Sundays that end the 3 weeks before it: Nov 15, 8 and 1.
    expect([...kept].sort()).toEqual(['2026-11-01', '2026-11-08', '2026-11-15', '2026-11-16', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20']);
    expect(p.diagnostics).toEqual([
      expect.objectContaining({ code: 'plan.mass_prune', severity: 'error' }), // 26 of 34: more than half
    ]);
  });

  it('--allow-mass-prune turns the refusal into a warning', () => {
    const p = plan(policyWith(), observed(nightly('2026-10-18', 34)), { allowMassPrune: true });
    expect(p.diagnostics.map((d) => d.severity)).toEqual(['warning']);
  });

  it('never prunes the newest good backup, whatever the rules', () => {
    // Not due (weekly, taken this week); the newest backup is on-demand and keep_on_demand 0 keeps none.
    const b = [backup('2026-11-15T03:00:00Z'), backup('2026-11-21T10:00:00Z', { kind: 'on_demand' })];
    const p = plan(policyWith({ cron: '0 3 * * 0', retention: { keep_last: 5, keep_on_demand: 0 } }), observed(b));
    expect(p.actions).toEqual([]);
  });

  it('with a backup planned, the old newest may go: the prune waits for the new backup to succeed', () => {
    const p = plan(policyWith({ retention: { keep_last: 1 } }), observed([backup('2026-11-20T23:00:00Z')]));
    expect(kinds(p.actions)).toEqual(['create backup', 'delete prune']);
    expect((p.actions[1] as PruneAction).requires).toBe('backup.app.files');
  });

  it('on-demand pool: keep_on_demand N newest, apart from the scheduled rules', () => {
    const b = [
      backup('2026-11-19T10:00:00Z', { kind: 'on_demand' }),
      backup('2026-11-20T10:00:00Z', { kind: 'on_demand' }),
      backup('2026-11-21T10:00:00Z', { kind: 'on_demand' }),
      backup('2026-11-21T23:00:00Z'),
    ];
    const p = plan(policyWith({ retention: { keep_daily: 7, keep_on_demand: 1 } }), observed(b), { allowMassPrune: true });
    expect(prunedDays(p.actions)).toEqual(['2026-11-19', '2026-11-20']);
    expect(p.actions[0]!.reason).toBe('prune: on-demand backup beyond keep_on_demand 1');
  });

  it('a storage retention overrides the schedule', () => {
    const b = [...nightly('2026-11-18', 3).map((x) => ({ ...x, storage: 'local' })), ...nightly('2026-11-18', 3).map((x) => ({ ...x, storage: 'far', id: `f${x.id.slice(1)}` }))];
    const p = plan(policyWith({ storages: ['local', 'far'], retention: { keep_daily: 30 }, storageRetention: { local: { keep_last: 2 } } }), observed(b, { storages: ['local', 'far'] }), { allowMassPrune: true });
    expect(p.actions.filter((a): a is PruneAction => a.kind === 'prune').map((a) => `${a.storage} ${a.before.started_at.slice(0, 10)}`)).toEqual(['local 2026-11-18', 'local 2026-11-19']);
  });

  it('units no longer in the policy are left alone', () => {
    const p = plan(policyWith({ retention: { keep_last: 1 } }), observed([...nightly('2026-11-01', 5).map((b) => ({ ...b, unit: 'old' })), backup('2026-11-21T23:00:00Z')]));
    expect(p.actions).toEqual([]);
    expect(p.notes[0]!.message).toBe('unit old is no longer in the policy: its 5 backup(s) in local are left alone');
  });
});

describe('planner: safety and cleanup', () => {
  it('refuses to prune more than half of a target', () => {
    const p = plan(policyWith({ retention: { keep_last: 1 } }), observed(nightly('2026-11-18', 3)));
    // 3 existing + tonight's = 4; keep_last 1 prunes the 3 that exist.
    expect(p.diagnostics[0]!.summary).toBe('target app: this plan prunes 3 of its 4 backups (more than half)');
  });

  it('half is not more than half: keep_last 1, night after night', () => {
    const p = plan(policyWith({ retention: { keep_last: 1 } }), observed(nightly('2026-11-20', 1)));
    expect(prunedDays(p.actions)).toEqual(['2026-11-20']);
    expect(p.diagnostics).toEqual([]);
  });

  it('cleans up incomplete artifacts, but not while a lock says a backup is running', () => {
    const o = observed([backup('2026-11-21T23:00:00Z')]);
    o.storages[0]!.incomplete.push({ storage: 'local', key: 'app/files/20261121T230000Z-0123456789ab.tar.gz', target: 'app', unit: 'files', why: 'artifact without manifest' });
    const p = plan(policyWith(), o);
    expect(kinds(p.actions)).toEqual(['delete cleanup']);
    expect(p.actions[0]!.reason).toBe('cleanup: artifact without manifest (left by an interrupted backup)');
    o.storages[0]!.locks.push({ id: 'app', storage: 'local', holder: 'x', host: 'h', pid: 1, created_at: '', expires_at: '', units: [] });
    expect(plan(policyWith(), o).actions).toEqual([]);
  });

  it('a storage that cannot be read plans nothing for it and says so', () => {
    const o = observed([]);
    o.storages[0]!.error = 'storage "local" (local:/x): permission denied';
    const p = plan(policyWith(), o);
    expect(p.actions).toEqual([]);
    expect(p.diagnostics[0]!.summary).toMatch(/permission denied/);
  });

  it('is deterministic: same inputs, same plan', () => {
    const o = observed(nightly('2026-10-01', 40));
    expect(JSON.stringify(plan(policyWith(), o))).toBe(JSON.stringify(plan(policyWith(), o)));
  });
});

describe('planner: copies to other storages', () => {
  const two = (opts: Parameters<typeof policyWith>[0] = {}) => policyWith({ storages: ['local', 'offsite'], ...opts });
  const copies = (actions: Action[]) => actions.filter((a): a is CopyAction => a.kind === 'copy');

  it('a storage added later gets every backup its retention keeps, and tonight\'s once it exists', () => {
    const p = plan(two({ retention: { keep_daily: 7 } }), observed(nightly('2026-11-16', 5), { storages: ['local', 'offsite'] }));
    expect(kinds(p.actions)).toEqual(['create backup', 'create copy', 'create copy', 'create copy', 'create copy', 'create copy', 'create copy']);
    const c = copies(p.actions);
    expect(c.map((x) => x.source.started_at?.slice(0, 10) ?? 'new')).toEqual(['2026-11-16', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20', 'new']);
    expect(c[5]).toMatchObject({ storage: 'offsite', source: { storage: 'local' }, requires: 'backup.app.files' });
    expect(c[0]!.reason).toBe('copy: local holds it and offsite does not; kept there by daily snapshot');
  });

  it('only what the other storage keeps is copied: nothing is copied just to be pruned', () => {
    const p = plan(two({ retention: { keep_daily: 30 }, storageRetention: { offsite: { keep_last: 2 } } }), observed(nightly('2026-11-16', 5), { storages: ['local', 'offsite'] }));
    expect(copies(p.actions).map((x) => x.source.started_at?.slice(0, 10) ?? 'new')).toEqual(['2026-11-20', 'new']);
  });

  it('prunes in the other storage wait for the copy of tonight\'s backup', () => {
    const local = nightly('2026-11-18', 3);
    const off = local.map((b) => ({ ...b, storage: 'offsite' }));
    const p = plan(two({ retention: { keep_last: 2 } }), observed([...local, ...off], { storages: ['local', 'offsite'] }));
    const prunes = p.actions.filter((a): a is PruneAction => a.kind === 'prune');
    expect(prunes.map((x) => `${x.storage} ${x.before.started_at.slice(0, 10)} after ${x.requires}`)).toEqual([
      'local 2026-11-18 after backup.app.files',
      'local 2026-11-19 after backup.app.files',
      'offsite 2026-11-18 after copy.offsite.app.files.new',
      'offsite 2026-11-19 after copy.offsite.app.files.new',
    ]);
  });

  it('in step: same backups in both storages and nothing due means no changes', () => {
    const local = nightly('2026-11-19', 3);
    const p = plan(two(), observed([...local, ...local.map((b) => ({ ...b, storage: 'offsite' }))], { storages: ['local', 'offsite'] }));
    expect(p.actions).toEqual([]);
  });
});
