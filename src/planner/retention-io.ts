/**
 * The pure core of `bkp retention test`: JSON in, JSON out, so users can try a policy on a
 * list of backup times and see what restic-style retention keeps, and why (DESIGN §5).
 *
 * Input:  {"policy": {keep_*…}, "snapshots": [{"id", "time"}], "now"?: ISO, "timezone"?: IANA}
 * Output: {"keep": [ids], "prune": [ids], "reasons": {id: [matches]}}, newest first, pretty.
 * Every input problem is a UserError whose message starts with the field's path.
 */
import { DateTime } from 'luxon';
import { UserError } from '../core/diagnostics.js';
import type { RetentionRules } from '../policy/types.js';
import {
  DurationSyntaxError,
  hasNegativePart,
  isValidTimeZone,
  parseDuration,
  type ResticDuration,
} from './duration.js';
import { applyRetention, COUNT_RULE_KEYS, DURATION_RULE_KEYS, type RetentionSnapshot } from './retention.js';

const TOP_KEYS = ['policy', 'snapshots', 'now', 'timezone'] as const;
/** keep_on_demand is accepted so a policy can be pasted as written; the test has no on-demand pool. */
const POLICY_KEYS: readonly string[] = [...COUNT_RULE_KEYS, ...DURATION_RULE_KEYS, 'keep_on_demand'];

function fail(path: string, message: string): never {
  const summary = `${path}: ${message}`;
  throw new UserError(summary, [{ severity: 'error', code: 'retention.bad_input', summary, path }]);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** An ISO-8601 time; one without an offset is wall time in `zone` (the schedule's zone). */
function parseTime(path: string, v: unknown, zone: string): Date {
  if (typeof v !== 'string') fail(path, `${show(v)} is not an ISO-8601 time (expected a string)`);
  const dt = DateTime.fromISO(v, { zone, setZone: true });
  if (!dt.isValid) fail(path, `${show(v)} is not an ISO-8601 time`);
  return dt.toJSDate();
}

function durationOrFail(path: string, value: string): ResticDuration {
  try {
    return parseDuration(value);
  } catch (e) {
    if (e instanceof DurationSyntaxError) fail(path, `${show(value)} is not a duration: ${e.message} (units: y m d h)`);
    throw e;
  }
}

function parseRules(v: unknown): RetentionRules {
  if (!isRecord(v)) fail('policy', 'expected an object of keep_* rules');
  const rules: RetentionRules = {};
  for (const [key, value] of Object.entries(v)) {
    const path = `policy.${key}`;
    if (!POLICY_KEYS.includes(key)) fail(path, `unknown rule (expected one of ${POLICY_KEYS.join(', ')})`);
    if ((DURATION_RULE_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== 'string') fail(path, `${show(value)} is not a duration (write it like "7d" or "1y2m3d4h")`);
      const parsed = durationOrFail(path, value);
      // restic's forget refuses these too ("durations containing negative values are not allowed").
      if (hasNegativePart(parsed)) fail(path, `${show(value)}: negative durations are not allowed`);
      rules[key as (typeof DURATION_RULE_KEYS)[number]] = value;
    } else {
      // 0 is accepted and means "rule off", as in restic; other negatives are refused as restic does.
      if (typeof value !== 'number' || !Number.isInteger(value) || value < -1) {
        fail(path, `${show(value)} is not a count (use N ≥ 1, or -1 for unlimited)`);
      }
      rules[key as (typeof COUNT_RULE_KEYS)[number] | 'keep_on_demand'] = value;
    }
  }
  return rules;
}

function parseSnapshots(v: unknown, zone: string): RetentionSnapshot[] {
  if (!Array.isArray(v)) fail('snapshots', 'expected an array of {"id", "time"}');
  const firstSeen = new Map<string, number>();
  return v.map((item: unknown, i): RetentionSnapshot => {
    const path = `snapshots[${i}]`;
    if (!isRecord(item)) fail(path, 'expected an object {"id", "time"}');
    const { id, time } = item;
    if (id === undefined) fail(`${path}.id`, 'missing');
    if (typeof id !== 'string' || id === '') fail(`${path}.id`, `${show(id)} is not a non-empty string`);
    const earlier = firstSeen.get(id);
    // Ids key the reasons map: a repeat would make the answer ambiguous.
    if (earlier !== undefined) fail(`${path}.id`, `${show(id)} is already used by snapshots[${earlier}]`);
    firstSeen.set(id, i);
    if (time === undefined) fail(`${path}.time`, 'missing');
    return { id, time: parseTime(`${path}.time`, time, zone) };
  });
}

/** Run `bkp retention test` on its JSON input; returns the pretty JSON answer (with a final newline). */
export function runRetentionTest(inputJson: string): string {
  let input: unknown;
  try {
    input = JSON.parse(inputJson);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new UserError(`input is not JSON: ${why}`, [
      { severity: 'error', code: 'retention.bad_input', summary: `input is not JSON: ${why}` },
    ]);
  }
  if (!isRecord(input)) fail('input', 'expected an object {"policy", "snapshots", "now"?, "timezone"?}');
  for (const key of Object.keys(input)) {
    if (!(TOP_KEYS as readonly string[]).includes(key)) fail(key, `unknown field (expected ${TOP_KEYS.join(', ')})`);
  }

  // The zone comes first: times without an offset are read in it.
  let timezone = 'UTC';
  if (input.timezone !== undefined) {
    if (typeof input.timezone !== 'string' || !isValidTimeZone(input.timezone)) {
      fail('timezone', `${show(input.timezone)} is not an IANA time zone (e.g. "Europe/Paris", "UTC")`);
    }
    timezone = input.timezone;
  }
  if (input.policy === undefined) fail('policy', 'missing');
  const rules = parseRules(input.policy);
  if (input.snapshots === undefined) fail('snapshots', 'missing');
  const snapshots = parseSnapshots(input.snapshots, timezone);
  const now = input.now === undefined ? undefined : parseTime('now', input.now, timezone);

  const result = applyRetention(snapshots, rules, now === undefined ? { timezone } : { timezone, now });
  return `${JSON.stringify({ keep: result.keep, prune: result.prune, reasons: result.reasons }, null, 2)}\n`;
}
