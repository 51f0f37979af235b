import { describe, expect, it } from 'vitest';
import { makePlan } from '../src/planner/plan.js';
import { cronToSlm, retentionToSlm } from '../src/planner/resources/slm.js';
import { elasticsearchResources } from '../src/planner/resources/elasticsearch.js';
import { engineCatalog } from '../src/planner/resources/index.js';
import type { BackupRecord, ObservedResource, ObservedState, ResourceAction } from '../src/planner/types.js';
import type { Policy, RetentionRules } from '../src/policy/types.js';
import { policyWith } from './helpers/fixtures.js';

// Planner tests for the Elasticsearch engine (issue 6): SLM mapping, the repository and SLM
// policy as declared resources, and snapshots as an engine catalog. Pure: no cluster.

describe('SLM: cron', () => {
  const cases: { cron: string; tz?: string; expect: string | RegExp }[] = [
    { cron: '30 1 * * *', expect: '0 30 1 * * ?' },
    { cron: '0 3 * * 0', expect: '0 0 3 ? * 1' }, // Sunday is 0 in cron, 1 in Quartz
    { cron: '0 3 * * 1-5', expect: '0 0 3 ? * 2-6' },
    { cron: '0 3 * * MON', expect: '0 0 3 ? * MON' },
    { cron: '15 */6 1 * *', expect: '0 15 */6 1 * ?' },
    { cron: '0 3 1 * 1', expect: /both a day of the month and a day of the week/ },
    { cron: '0 3 * * *', tz: 'Europe/Paris', expect: /SLM runs schedules in UTC/ },
  ];
  it.each(cases)('$cron ($tz)', (c) => {
    const r = cronToSlm({ cron: c.cron, timezone: c.tz ?? 'UTC' });
    if (typeof c.expect === 'string') expect(r).toEqual({ ok: true, value: c.expect });
    else expect(r.ok ? r.value : r.error).toMatch(c.expect);
  });
});

describe('SLM: retention', () => {
  const cases: { name: string; rules: RetentionRules; cron?: string; expect: object | RegExp }[] = [
    { name: 'keep_daily 7 on a nightly cron (OpenCRVS)', rules: { keep_daily: 7 }, expect: { min_count: 1, max_count: 7 } },
    { name: 'keep_last', rules: { keep_last: 14 }, expect: { min_count: 1, max_count: 14 } },
    { name: 'keep_within days', rules: { keep_within: '30d' }, expect: { min_count: 1, expire_after: '30d' } },
    { name: 'keep_within hours', rules: { keep_within: '1d12h' }, expect: { min_count: 1, expire_after: '36h' } },
    { name: 'both', rules: { keep_last: 3, keep_within: '7d' }, expect: { min_count: 1, max_count: 3, expire_after: '7d' } },
    { name: 'keep_weekly cannot be expressed', rules: { keep_daily: 7, keep_weekly: 4 }, expect: /keep_weekly cannot be expressed in SLM/ },
    { name: 'keep_daily on an hourly cron', rules: { keep_daily: 7 }, cron: '0 * * * *', expect: /only when the schedule fires once a day/ },
    { name: 'months in keep_within', rules: { keep_within: '1m' }, expect: /days and hours only/ },
    { name: 'unlimited', rules: { keep_last: -1 }, expect: /no "unlimited" count/ },
    { name: 'nothing that expires', rules: { keep_on_demand: 2 }, expect: /needs keep_last, keep_daily or keep_within/ },
  ];
  it.each(cases)('$name', (c) => {
    const r = retentionToSlm(c.rules, c.cron ?? '0 1 * * *');
    if (c.expect instanceof RegExp) expect(r.ok ? 'ok' : r.error).toMatch(c.expect);
    else expect(r).toEqual({ ok: true, value: c.expect });
  });
});

const NOW = new Date('2026-11-22T04:00:00Z');

function esPolicy(settings: Record<string, unknown> = {}, retention: RetentionRules = { keep_daily: 7 }): Policy {
  const p = policyWith({ cron: '0 1 * * *', retention });
  const t = p.targets.app!;
  t.engine = 'elasticsearch';
  t.settings = { node: 'http://es:9200', snapshot_repository: { name: 'backups', type: 'fs', settings: { location: '/data/backups/elasticsearch', compress: true } }, ...settings };
  return p;
}

function snapshot(day: string, over: Partial<BackupRecord> = {}): BackupRecord {
  const id = `id${day.replace(/-/g, '')}`;
  return { storage: 'elasticsearch:app:backups', target: 'app', unit: 'cluster', id, kind: 'scheduled', started_at: `${day}T01:00:00.000Z`, key: `bkp-app-${id}`, manifestKey: `bkp-app-${id}`, ...over };
}

function esState(p: Policy, snapshots: BackupRecord[], resources: ObservedResource[], warnings: string[] = []): ObservedState {
  return {
    storages: [
      { name: 'local', backups: [], incomplete: [], locks: [] },
      { name: engineCatalog(p.targets.app!)!, backups: snapshots, incomplete: [], locks: [], warnings },
    ],
    targets: [{ name: 'app', units: ['cluster'], resources }],
  };
}

/** The repository as Elasticsearch returns it: settings as strings. */
function repoFound(settings: Record<string, string> = { location: '/data/backups/elasticsearch', compress: 'true' }): ObservedResource {
  const spec: ObservedResource['spec'] = { type: 'fs' };
  for (const k of Object.keys(settings).sort()) spec[`settings.${k}`] = settings[k]!;
  return { kind: 'snapshot_repository', name: 'backups', managed: true, target: 'app', spec, sensitive: [] };
}

const days = (from: string, n: number) => Array.from({ length: n }, (_, i) => new Date(Date.parse(`${from}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10));
const show = (p: ReturnType<typeof makePlan>) => p.actions.map((a) => `${a.op} ${a.kind}${a.kind === 'prune' ? ` ${a.before.started_at.slice(0, 10)}` : ''}`);

describe('planner: elasticsearch, mode managed', () => {
  it('first run: the repository is created, then a snapshot taken into it', () => {
    const p = esPolicy();
    const plan = makePlan(p, esState(p, [], []), NOW, {}, 'test');
    expect(show(plan)).toEqual(['create snapshot_repository', 'create backup']);
    expect((plan.actions[0] as ResourceAction).after).toEqual({ type: 'fs', 'settings.compress': 'true', 'settings.location': '/data/backups/elasticsearch' });
    expect(plan.actions[1]).toMatchObject({ storage: 'elasticsearch:app:backups', unit: 'cluster' });
  });

  it('seven-day rotation: the eighth snapshot prunes the oldest, in the repository', () => {
    const p = esPolicy();
    const plan = makePlan(p, esState(p, days('2026-11-15', 7).map((d) => snapshot(d)), [repoFound()]), NOW, {}, 'test');
    expect(show(plan)).toEqual(['create backup', 'delete prune 2026-11-15']);
  });

  it('up to date: no changes; a repository setting changed by hand is drift shown field by field', () => {
    const p = esPolicy();
    const plan = makePlan(p, esState(p, days('2026-11-16', 7).map((d) => snapshot(d)), [repoFound({ location: '/elsewhere', compress: 'true' })]), NOW, {}, 'test');
    expect(show(plan)).toEqual(['update snapshot_repository']);
    const a = plan.actions[0] as ResourceAction;
    expect(a.changed).toEqual(['settings.location']);
    expect(a.before!['settings.location']).toBe('/elsewhere');
  });

  it('PARTIAL and FAILED snapshots are reported, never counted', () => {
    const p = esPolicy();
    const plan = makePlan(p, esState(p, days('2026-11-16', 6).map((d) => snapshot(d)), [repoFound()], ['snapshot bkp-app-x is PARTIAL (2 of 10 shards failed): not a good backup']), NOW, {}, 'test');
    expect(show(plan)).toEqual(['create backup']);
    expect(plan.diagnostics[0]!.summary).toBe('target app: snapshot bkp-app-x is PARTIAL (2 of 10 shards failed): not a good backup');
  });
});

describe('planner: elasticsearch, mode slm', () => {
  it('declares the SLM policy mapped from the schedule and retention; bkp plans no snapshot and no prune', () => {
    const p = esPolicy({ mode: 'slm', indices: ['ocrvs*'] });
    const plan = makePlan(p, esState(p, days('2026-11-01', 20).map((d) => snapshot(d)), [repoFound()]), NOW, {}, 'test');
    expect(show(plan)).toEqual(['create snapshot_policy']);
    expect((plan.actions[0] as ResourceAction).after).toEqual({
      schedule: '0 0 1 * * ?',
      name: '<bkp-app-{now/d}>',
      repository: 'backups',
      indices: 'ocrvs*',
      include_global_state: false,
      expire_after: null,
      min_count: 1,
      max_count: 7,
    });
  });

  it('a retention change is a policy diff', () => {
    const before = esPolicy({ mode: 'slm' });
    const after = esPolicy({ mode: 'slm' }, { keep_daily: 14 });
    const slm = elasticsearchResources(before.targets.app!)[1]!;
    const found: ObservedResource = { kind: 'snapshot_policy', name: slm.name, managed: true, target: 'app', spec: slm.spec, sensitive: [] };
    const plan = makePlan(after, esState(after, [], [repoFound(), found]), NOW, {}, 'test');
    expect(show(plan)).toEqual(['update snapshot_policy']);
    expect((plan.actions[0] as ResourceAction).changed).toEqual(['max_count']);
  });
});
