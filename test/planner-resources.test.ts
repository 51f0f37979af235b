import { describe, expect, it } from 'vitest';
import { makePlan } from '../src/planner/plan.js';
import { couchdbReplications } from '../src/planner/resources/couchdb.js';
import { specDigest } from '../src/planner/resources/digest.js';
import type { ObservedResource, ObservedState, PlanOptions, ResourceAction, ResourceState } from '../src/planner/types.js';
import type { Policy } from '../src/policy/types.js';
import { renderPlanText } from '../src/render/plan-text.js';
import { Chalk } from 'chalk';
import { policyWith } from './helpers/fixtures.js';

// Planner tests for declarative resources (issue 4): CouchDB replication documents, diffed
// against what `_replicator` holds. Pure: no server, a fixed clock.

const NOW = new Date('2026-11-22T04:00:00Z');
const SRC = 'https://admin:s3cret@src.example.org';
const REPLICA = 'https://rep:r3plica@replica.example.org';

function couchPolicy(settings: Record<string, unknown> = {}): Policy {
  const p = policyWith({ cron: '0 3 * * 0', retention: { keep_weekly: 4 } }); // Sundays 03:00; 2026-11-22 is a Sunday
  const t = p.targets.app!;
  t.engine = 'couchdb';
  t.settings = { url: SRC, replicate_to: REPLICA, databases: ['devices', 'users'], export: false, ...settings };
  return p;
}

/** What observe would report for a document bkp wrote from the current policy. */
function written(p: Policy, unit: string, over: Partial<ObservedResource> = {}, specOver: Record<string, string | boolean | null> = {}): ObservedResource {
  const d = couchdbReplications(p.targets.app!, [unit])[0]!;
  return {
    kind: 'replication',
    name: d.name,
    managed: true,
    target: 'app',
    unit,
    spec: { ...d.spec, ...specOver },
    sensitive: d.sensitive,
    revision: '2-abc',
    mark_digest: specDigest(d.spec, d.sensitive),
    ...over,
  };
}

function state(p: Policy, resources: ObservedResource[], units = ['devices', 'users']): ObservedState {
  return { storages: [{ name: 'local', backups: [], incomplete: [], locks: [] }], targets: [{ name: 'app', units, resources }] };
}

const plan = (p: Policy, o: ObservedState, opts: PlanOptions = {}, now = NOW) => makePlan(p, o, now, opts, 'test');
const summary = (actions: ReturnType<typeof plan>['actions']) => actions.map((a) => `${a.op} ${a.kind} ${a.unit ?? ''} ${(a as ResourceAction).change ?? ''}`.trim());
const completed = (at: string): ResourceState => ({ status: 'completed', last_run_at: at });

describe('planner: replication documents', () => {
  const p = couchPolicy();
  const cases: { name: string; resources: ObservedResource[]; opts?: PlanOptions; expect: string[] }[] = [
    { name: 'nothing on the server: one document per database', resources: [], expect: ['create replication devices create', 'create replication users create'] },
    {
      name: 'both completed after the last fire: no changes',
      resources: [written(p, 'devices', { state: completed('2026-11-22T03:05:00Z') }), written(p, 'users', { state: completed('2026-11-22T03:06:00Z') })],
      expect: [],
    },
    {
      name: 'completed before the last fire: rerun',
      resources: [written(p, 'devices', { state: completed('2026-11-15T03:05:00Z') }), written(p, 'users', { state: completed('2026-11-22T03:06:00Z') })],
      expect: ['update replication devices rerun'],
    },
    {
      name: 'a failed one-shot task is run again when due',
      resources: [written(p, 'devices', { state: { status: 'failed', error: 'unauthorized', last_run_at: '2026-11-15T03:01:00Z' } }), written(p, 'users', { state: completed('2026-11-22T03:06:00Z') })],
      expect: ['update replication devices rerun'],
    },
    {
      name: 'a running task is left to finish, even when due',
      resources: [written(p, 'devices', { state: { status: 'running', last_run_at: '2026-11-15T03:05:00Z' } }), written(p, 'users', { state: completed('2026-11-22T03:06:00Z') })],
      expect: [],
    },
    {
      name: 'deleted by hand: created again, as drift',
      resources: [{ kind: 'replication', name: 'bkp-app-devices', managed: false, spec: {}, sensitive: [], deleted: true }, written(p, 'users', { state: completed('2026-11-22T03:06:00Z') })],
      expect: ['create replication devices drift'],
    },
    {
      name: 'edited by hand: drift, changed back',
      resources: [written(p, 'devices', { state: completed('2026-11-22T03:05:00Z') }, { continuous: true }), written(p, 'users', { state: completed('2026-11-22T03:06:00Z') })],
      expect: ['update replication devices drift'],
    },
    {
      name: 'a database removed from the policy: its document is deleted',
      resources: [
        written(p, 'devices', { state: completed('2026-11-22T03:05:00Z') }),
        written(p, 'users', { state: completed('2026-11-22T03:06:00Z') }),
        written(couchPolicy({ databases: ['shields'] }), 'shields', { state: completed('2026-11-22T03:06:00Z') }),
      ],
      expect: ['delete replication shields delete'],
    },
    {
      name: 'documents bkp did not write are never touched',
      resources: [
        written(p, 'devices', { state: completed('2026-11-22T03:05:00Z') }),
        written(p, 'users', { state: completed('2026-11-22T03:06:00Z') }),
        { kind: 'replication', name: 'nightly-by-hand', managed: false, spec: { source: 'x' }, sensitive: [] },
        { ...written(p, 'users'), name: 'bkp-other-users', target: 'other' },
      ],
      expect: [],
    },
    {
      name: 'bkp backup reruns every completed task, and only adds',
      resources: [
        written(p, 'devices', { state: completed('2026-11-22T03:05:00Z') }),
        written(p, 'users', { state: { status: 'running' } }),
        written(couchPolicy({ databases: ['shields'] }), 'shields'),
      ],
      opts: { onDemand: { target: 'app' } },
      expect: ['update replication devices rerun'],
    },
    {
      name: 'bkp backup --unit users reruns only that one',
      resources: [written(p, 'devices', { state: completed('2026-11-22T03:05:00Z') }), written(p, 'users', { state: completed('2026-11-22T03:05:00Z') })],
      opts: { onDemand: { target: 'app', units: ['users'] } },
      expect: ['update replication users rerun'],
    },
  ];
  it.each(cases)('$name', (c) => {
    expect(summary(plan(p, state(p, c.resources), c.opts).actions)).toEqual(c.expect);
  });

  it('a policy change is a change, not drift, and lists the fields', () => {
    const before = couchPolicy();
    const after = couchPolicy({ continuous: true });
    const pl = plan(after, state(after, [written(before, 'devices', { state: completed('2026-11-22T03:05:00Z') }), written(before, 'users', { state: completed('2026-11-22T03:05:00Z') })]));
    const a = pl.actions[0] as ResourceAction;
    expect(a.change).toBe('change');
    expect(a.changed).toEqual(['continuous']);
    expect(a.reason).toBe('policy changed: continuous');
    expect(pl.summary).toEqual({ create: 0, update: 2, delete: 0 });
  });

  it('a document in the way that bkp did not write is an error, not an overwrite', () => {
    const pl = plan(p, state(p, [{ kind: 'replication', name: 'bkp-app-devices', managed: false, spec: {}, sensitive: [] }]));
    expect(summary(pl.actions)).toEqual(['create replication users create']);
    expect(pl.diagnostics).toEqual([expect.objectContaining({ severity: 'error', code: 'resource.unmanaged' })]);
    expect(pl.diagnostics[0]!.summary).toMatch(/bkp-app-devices already exists and was not made by bkp/);
  });

  it('failed and crashing tasks are reported with the server\'s words', () => {
    const pl = plan(p, state(p, [
      written(p, 'devices', { state: { status: 'crashing', error: 'db_not_found: could not open https://replica.example.org/devices' } }),
      written(p, 'users', { state: { status: 'failed', error: 'unauthorized', last_run_at: '2026-11-22T03:01:00Z' } }),
    ]));
    expect(pl.diagnostics.map((d) => d.summary)).toEqual([
      'target app: replication bkp-app-devices keeps crashing: db_not_found: could not open https://replica.example.org/devices',
      'target app: replication bkp-app-users failed (2026-11-22T03:01:00Z): unauthorized',
    ]);
    expect(pl.actions).toEqual([]); // failed after the last fire: not due again yet
  });

  it('credentials never reach the plan; a changed password shows as changed', () => {
    const before = couchPolicy();
    const after = couchPolicy({ url: 'https://admin:n3w@src.example.org' });
    const pl = plan(after, state(after, [written(before, 'devices', { state: completed('2026-11-22T03:05:00Z') }), written(before, 'users', { state: completed('2026-11-22T03:05:00Z') })]));
    expect(JSON.stringify(pl)).not.toMatch(/s3cret|n3w|r3plica/);
    const a = pl.actions[0] as ResourceAction;
    expect(a.changed).toEqual(['source_auth']);
    expect(a.after).toMatchObject({ source: 'https://src.example.org/devices', source_auth: '(sensitive)', create_target: true, continuous: false });
    const text = renderPlanText(pl, new Chalk({ level: 0 }));
    expect(text).toContain('~ source_auth   = "(sensitive)" -> "(sensitive)" (changed)');
    expect(text).toContain('  ~ replication "bkp-app-devices" {');
    expect(text).toMatch(/Plan: 0 to create, 2 to change, 0 to delete\./);
  });

  it('renders a create and a field diff Terraform-style', () => {
    const after = couchPolicy({ continuous: true });
    const pl = plan(after, state(after, [written(couchPolicy(), 'devices', { state: completed('2026-11-22T03:05:00Z') })], ['devices']));
    const text = renderPlanText(pl, new Chalk({ level: 0 }));
    expect(text).toContain([
      '  # app/devices: policy changed: continuous',
      '  ~ replication "bkp-app-devices" {',
      '        source        = "https://src.example.org/devices"',
      '        target        = "https://replica.example.org/devices"',
      '        source_auth   = "(sensitive)"',
      '        target_auth   = "(sensitive)"',
      '        create_target = true',
      '      ~ continuous    = false -> true',
      '    }',
    ].join('\n'));
  });

  it('unreadable resources: a warning, and nothing changes', () => {
    const o = state(p, []);
    o.targets[0]!.resourcesError = 'could not read _replicator on https://src.example.org: 401 unauthorized';
    const pl = plan(p, o);
    expect(pl.actions).toEqual([]);
    expect(pl.diagnostics[0]!.summary).toMatch(/401 unauthorized; its replications are left as they are/);
  });

  it('plans with every kind of resource action match schemas/plan.schema.json', async () => {
    const { Ajv2020 } = await import('ajv/dist/2020.js');
    const { readFileSync } = await import('node:fs');
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(JSON.parse(readFileSync('schemas/plan.schema.json', 'utf8')));
    const before = couchPolicy();
    const after = couchPolicy({ continuous: true, databases: ['devices', 'users', 'shields'], export: true });
    const pl = plan(after, state(after, [
      written(before, 'devices', { state: completed('2026-11-22T03:05:00Z') }),
      written(couchPolicy({ databases: ['old'] }), 'old'),
    ], ['devices', 'users', 'shields']));
    expect(new Set(pl.actions.map((a) => `${a.kind}/${a.op}`))).toEqual(new Set(['replication/update', 'replication/create', 'replication/delete', 'backup/create']));
    expect(validate(JSON.parse(JSON.stringify(pl))), JSON.stringify(validate.errors)).toBe(true);
  });

  it('export: true also plans the export backups', () => {
    const pe = couchPolicy({ export: true });
    const pl = plan(pe, state(pe, []));
    expect(summary(pl.actions)).toEqual(['create replication devices create', 'create replication users create', 'create backup devices', 'create backup users']);
  });
});
