import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/core/diagnostics.js';
import { DurationSyntaxError } from '../src/planner/duration.js';
import { runRetentionTest } from '../src/planner/retention-io.js';
import {
  applyRetention,
  EMPTY_POLICY_REASON,
  type RetentionResult,
  type RetentionRules,
  type RetentionSnapshot,
} from '../src/planner/retention.js';

interface FixtureSnapshot {
  id: string;
  time: string;
}

interface FixtureCase {
  name: string;
  /** Why the expectation is what it is; for restic cases, where it departs from the golden file. */
  note?: string;
  golden?: string;
  timezone?: string;
  now?: string;
  snapshots?: FixtureSnapshot[];
  policy: RetentionRules;
  keep: string[];
  reasons: Record<string, string[]>;
}

interface Fixture {
  description: string;
  timezone?: string;
  snapshots?: FixtureSnapshot[];
  cases: FixtureCase[];
}

function loadFixture(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(`./fixtures/retention/${name}`, import.meta.url), 'utf8')) as Fixture;
}

/**
 * restic's golden cases. All of restic's test snapshots are in UTC, so running them with
 * timezone 'UTC' gives exactly restic's per-snapshot-offset buckets: no case differs for that
 * reason. Cases that do differ (empty policy, keep-tag, goldens stored only in pre-0.17 form)
 * say why in their `note` and assert bkp's documented behaviour.
 */
const restic = loadFixture('restic-golden.json');
const ours = loadFixture('bkp-cases.json');

function toSnapshots(list: readonly FixtureSnapshot[]): RetentionSnapshot[] {
  return list.map((s) => ({ id: s.id, time: new Date(s.time) }));
}

/** What must hold for any input and rules, whatever they keep. */
function checkInvariants(input: readonly RetentionSnapshot[], r: RetentionResult): void {
  const ids = input.map((s) => s.id);
  const keep = new Set(r.keep);
  const prune = new Set(r.prune);
  // keep ∪ prune = input, disjoint, no repeats.
  expect(keep.size).toBe(r.keep.length);
  expect(prune.size).toBe(r.prune.length);
  expect(r.keep.length + r.prune.length).toBe(ids.length);
  expect([...keep].filter((id) => prune.has(id))).toEqual([]);
  expect(new Set([...r.keep, ...r.prune])).toEqual(new Set(ids));
  // Every kept id has at least one reason; reasons only for kept ids.
  expect(Object.keys(r.reasons).sort()).toEqual([...r.keep].sort());
  for (const id of r.keep) expect(r.reasons[id]?.length ?? 0).toBeGreaterThan(0);
  // Both lists newest first, in the order of the stable newest-first sort.
  const rank = new Map(
    input
      .map((s, i) => ({ s, i }))
      .sort((a, b) => b.s.time.getTime() - a.s.time.getTime() || a.i - b.i)
      .map(({ s }, pos) => [s.id, pos]),
  );
  for (const list of [r.keep, r.prune]) {
    const positions = list.map((id) => rank.get(id) ?? -1);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  }
}

function expectedPrune(input: readonly RetentionSnapshot[], keep: readonly string[]): string[] {
  const kept = new Set(keep);
  return input
    .map((s, i) => ({ s, i }))
    .sort((a, b) => b.s.time.getTime() - a.s.time.getTime() || a.i - b.i)
    .map(({ s }) => s.id)
    .filter((id) => !kept.has(id));
}

function runTable(fixture: Fixture): void {
  it.each(fixture.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const list = c.snapshots ?? fixture.snapshots;
    const timezone = c.timezone ?? fixture.timezone;
    if (list === undefined || timezone === undefined) throw new Error(`fixture case ${c.name} lacks snapshots or timezone`);
    const input = toSnapshots(list);
    const r = applyRetention(input, c.policy, c.now === undefined ? { timezone } : { timezone, now: new Date(c.now) });
    expect(r.keep).toEqual(c.keep);
    expect(r.reasons).toEqual(c.reasons);
    expect(r.prune).toEqual(expectedPrune(input, c.keep));
    checkInvariants(input, r);
  });
}

describe('restic golden cases (TestApplyPolicy, policy_keep_snapshots_N)', () => {
  it('has all 40 of restic’s policies', () => {
    expect(restic.cases).toHaveLength(40);
  });
  runTable(restic);
});

describe('bkp cases: time zones, DST, now, month ends, unlimited, equal times', () => {
  runTable(ours);
});

describe('applyRetention', () => {
  const snaps: RetentionSnapshot[] = [
    { id: 'a', time: new Date('2026-01-01T00:00:00Z') },
    { id: 'b', time: new Date('2026-01-02T00:00:00Z') },
  ];

  it('does not reorder or change its input', () => {
    const copy = snaps.map((s) => ({ ...s }));
    applyRetention(snaps, { keep_last: 1 }, { timezone: 'UTC' });
    expect(snaps).toEqual(copy);
  });

  it('gives every snapshot the empty-policy reason when no rule is set', () => {
    expect(applyRetention(snaps, {}, { timezone: 'UTC' })).toEqual({
      keep: ['b', 'a'],
      prune: [],
      reasons: { b: [EMPTY_POLICY_REASON], a: [EMPTY_POLICY_REASON] },
    });
  });

  it('same answer whatever order the catalog lists distinct times in', () => {
    const rules: RetentionRules = { keep_daily: 3, keep_within: '1d' };
    const list = toSnapshots(restic.snapshots ?? []).filter((s, i, all) => all.findIndex((o) => o.time.getTime() === s.time.getTime()) === i);
    const shuffled = [...list].reverse();
    expect(applyRetention(shuffled, rules, { timezone: 'UTC' })).toEqual(applyRetention(list, rules, { timezone: 'UTC' }));
  });

  const bad: { name: string; run: () => unknown; error: new (...args: never[]) => Error; message: string }[] = [
    { name: 'unknown zone', run: () => applyRetention(snaps, { keep_last: 1 }, { timezone: 'Nowhere/Land' }), error: RangeError, message: 'unknown IANA time zone' },
    { name: 'duplicate id', run: () => applyRetention([...snaps, snaps[0] as RetentionSnapshot], { keep_last: 1 }, { timezone: 'UTC' }), error: RangeError, message: 'duplicate snapshot id "a"' },
    { name: 'invalid time', run: () => applyRetention([{ id: 'x', time: new Date('nope') }], { keep_last: 1 }, { timezone: 'UTC' }), error: RangeError, message: 'invalid time' },
    { name: 'count below -1', run: () => applyRetention(snaps, { keep_daily: -2 }, { timezone: 'UTC' }), error: RangeError, message: 'keep_daily: -2 is not a count' },
    { name: 'bad duration', run: () => applyRetention(snaps, { keep_within: '2w' }, { timezone: 'UTC' }), error: DurationSyntaxError, message: "invalid unit 'w'" },
    { name: 'negative duration', run: () => applyRetention(snaps, { keep_within_daily: '-1d' }, { timezone: 'UTC' }), error: RangeError, message: 'negative values are not allowed' },
  ];
  it.each(bad)('refuses: $name', ({ run, error, message }) => {
    expect(run).toThrow(error);
    expect(run).toThrow(message);
  });
});

describe('runRetentionTest (bkp retention test)', () => {
  it('answers with pretty JSON, newest first, reasons per kept id', () => {
    const out = runRetentionTest(
      JSON.stringify({
        policy: { keep_daily: 2 },
        timezone: 'Europe/Paris',
        snapshots: [
          { id: 'a', time: '2024-03-13T11:00:00Z' },
          { id: 'b', time: '2024-03-14T23:30:00+01:00' },
          // No offset: wall time in the given zone (00:30 Paris on 15 March).
          { id: 'c', time: '2024-03-15T00:30:00' },
          { id: 'd', time: '2024-03-15T08:00:00Z' },
        ],
      }),
    );
    expect(out).toBe(
      `${JSON.stringify({ keep: ['d', 'b'], prune: ['c', 'a'], reasons: { d: ['daily snapshot'], b: ['daily snapshot'] } }, null, 2)}\n`,
    );
  });

  it('uses now and defaults the zone to UTC', () => {
    const out = JSON.parse(
      runRetentionTest(
        JSON.stringify({
          policy: { keep_within: '5d' },
          now: '2026-01-10T00:00:00Z',
          snapshots: [
            { id: 'a', time: '2026-01-01T12:00:00Z' },
            { id: 'b', time: '2026-01-05T12:00:00Z' },
            { id: 'c', time: '2026-01-09T12:00:00Z' },
            { id: 'f', time: '2026-01-20T12:00:00Z' },
          ],
        }),
      ),
    ) as unknown;
    expect(out).toEqual({ keep: ['f', 'c', 'b'], prune: ['a'], reasons: { f: ['within 5d'], c: ['within 5d'], b: ['within 5d'] } });
  });

  const ok = { policy: { keep_last: 1 }, snapshots: [{ id: 'a', time: '2026-01-01T00:00:00Z' }] };
  const snapshotsWithBadFourth = [
    { id: 's0', time: '2026-01-01T00:00:00Z' },
    { id: 's1', time: '2026-01-02T00:00:00Z' },
    { id: 's2', time: '2026-01-03T00:00:00Z' },
    { id: 's3', time: '2026-13-01' },
  ];
  const bad: { name: string; input: string; message: string }[] = [
    { name: 'not JSON', input: '{"policy":', message: 'input is not JSON' },
    { name: 'not an object', input: '[]', message: 'input: expected an object' },
    { name: 'unknown top-level field', input: JSON.stringify({ ...ok, tz: 'UTC' }), message: 'tz: unknown field' },
    { name: 'missing policy', input: JSON.stringify({ snapshots: [] }), message: 'policy: missing' },
    { name: 'missing snapshots', input: JSON.stringify({ policy: {} }), message: 'snapshots: missing' },
    { name: 'snapshots not an array', input: JSON.stringify({ policy: {}, snapshots: {} }), message: 'snapshots: expected an array' },
    { name: 'bad time', input: JSON.stringify({ policy: { keep_last: 1 }, snapshots: snapshotsWithBadFourth }), message: 'snapshots[3].time: "2026-13-01" is not an ISO-8601 time' },
    { name: 'time not a string', input: JSON.stringify({ policy: {}, snapshots: [{ id: 'a', time: 1767225600 }] }), message: 'snapshots[0].time: 1767225600 is not an ISO-8601 time' },
    { name: 'missing time', input: JSON.stringify({ policy: {}, snapshots: [{ id: 'a' }] }), message: 'snapshots[0].time: missing' },
    { name: 'missing id', input: JSON.stringify({ policy: {}, snapshots: [{ time: '2026-01-01T00:00:00Z' }] }), message: 'snapshots[0].id: missing' },
    { name: 'empty id', input: JSON.stringify({ policy: {}, snapshots: [{ id: '', time: '2026-01-01T00:00:00Z' }] }), message: 'snapshots[0].id: "" is not a non-empty string' },
    {
      name: 'duplicate id',
      input: JSON.stringify({ policy: {}, snapshots: [{ id: 'a', time: '2026-01-01T00:00:00Z' }, { id: 'a', time: '2026-01-02T00:00:00Z' }] }),
      message: 'snapshots[1].id: "a" is already used by snapshots[0]',
    },
    { name: 'unknown keep_ key', input: JSON.stringify({ ...ok, policy: { keep_dayly: 3 } }), message: 'policy.keep_dayly: unknown rule' },
    { name: 'keep-tag is not a bkp rule', input: JSON.stringify({ ...ok, policy: { keep_tag: 'foo' } }), message: 'policy.keep_tag: unknown rule' },
    { name: 'bad duration', input: JSON.stringify({ ...ok, policy: { keep_within: '2w' } }), message: `policy.keep_within: "2w" is not a duration: invalid unit 'w' found after number 2` },
    { name: 'duration not a string', input: JSON.stringify({ ...ok, policy: { keep_within_daily: 7 } }), message: 'policy.keep_within_daily: 7 is not a duration' },
    { name: 'negative duration', input: JSON.stringify({ ...ok, policy: { keep_within: '1y-1d' } }), message: 'policy.keep_within: "1y-1d": negative durations are not allowed' },
    { name: 'count below -1', input: JSON.stringify({ ...ok, policy: { keep_daily: -2 } }), message: 'policy.keep_daily: -2 is not a count' },
    { name: 'fractional count', input: JSON.stringify({ ...ok, policy: { keep_last: 1.5 } }), message: 'policy.keep_last: 1.5 is not a count' },
    { name: 'count as a string', input: JSON.stringify({ ...ok, policy: { keep_monthly: '3' } }), message: 'policy.keep_monthly: "3" is not a count' },
    { name: 'policy not an object', input: JSON.stringify({ ...ok, policy: [] }), message: 'policy: expected an object' },
    { name: 'bad zone', input: JSON.stringify({ ...ok, timezone: 'Europe/Pariss' }), message: 'timezone: "Europe/Pariss" is not an IANA time zone' },
    { name: 'bad now', input: JSON.stringify({ ...ok, now: 'yesterday' }), message: 'now: "yesterday" is not an ISO-8601 time' },
  ];
  it.each(bad)('refuses $name with the field in the message', ({ input, message }) => {
    let caught: unknown;
    try {
      runRetentionTest(input);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as UserError).message).toContain(message);
    // The message starts with the field, so a user sees at once what to fix.
    expect((caught as UserError).message.startsWith(message.split(':')[0] ?? '')).toBe(true);
    expect((caught as UserError).diagnostics[0]?.code).toBe('retention.bad_input');
  });
});
