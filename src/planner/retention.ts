/**
 * The retention function: which backups a set of `keep_*` rules keeps (DESIGN §5).
 *
 * A port of restic's `ApplyPolicy` (`internal/data/snapshot_policy.go`, restic ≥ 0.17, which
 * added "also keep the oldest snapshot while a rule has counts left"), so users can predict it
 * from restic's documentation. Differences, all from DESIGN §5:
 * - buckets and calendar steps are taken in one IANA zone (the schedule's), not in each
 *   snapshot's own UTC offset;
 * - keep_within* are measured from the newest snapshot not after `opts.now` (restic: strictly
 *   before the wall clock); without `now`, from the newest snapshot, so the function stays pure;
 * - an empty policy keeps everything (restic's `forget` refuses to act on an empty policy;
 *   its ApplyPolicy alone would remove everything);
 * - no `--keep-tag` and no `unique` (bkp has neither); `keep_on_demand` is the caller's business.
 * Pure: no clock, no I/O.
 */
import type { RetentionRules } from '../policy/types.js';
import { wallClock, type Wall } from './wall-clock.js';
import {
  formatDuration,
  hasNegativePart,
  ianaZone,
  isZeroDuration,
  parseDuration,
  subtractDuration,
  type ResticDuration,
} from './duration.js';

export type { RetentionRules } from '../policy/types.js';

/** One backup as retention sees it. */
export interface RetentionSnapshot {
  id: string;
  time: Date;
}

export interface RetentionOptions {
  /** IANA zone the hour/day/week/month/year buckets and calendar steps are taken in. */
  timezone: string;
  /** keep_within* are measured back from the newest snapshot not after this instant. */
  now?: Date;
}

export interface RetentionResult {
  /** Kept ids, newest first. */
  keep: string[];
  /** Ids to prune, newest first. */
  prune: string[];
  /** For each kept id, the rules that keep it in restic's wording (`KeepReason.Matches`). */
  reasons: Record<string, string[]>;
}

/** The reason given to every snapshot when no rule is set (restic: `ExpirePolicy.Empty()`). */
export const EMPTY_POLICY_REASON = 'policy is empty';

export type CountRuleKey = 'keep_last' | 'keep_hourly' | 'keep_daily' | 'keep_weekly' | 'keep_monthly' | 'keep_yearly';
export type WithinBucketRuleKey =
  | 'keep_within_hourly'
  | 'keep_within_daily'
  | 'keep_within_weekly'
  | 'keep_within_monthly'
  | 'keep_within_yearly';

/** The calendar fields of one snapshot in the retention zone, computed once per snapshot. */

/** Maps a snapshot to its bucket; two snapshots in one bucket count once. `nr` is the position newest-first. */
type Bucketer = (w: Wall, nr: number) => number;

// The bucketers are restic's ymdh/ymd/yw/ym/y/always: integers like YYYYMMDDHH, so "same bucket"
// is plain equality.
const ymdh: Bucketer = (w) => w.year * 1_000_000 + w.month * 10_000 + w.day * 100 + w.hour;
const ymd: Bucketer = (w) => w.year * 10_000 + w.month * 100 + w.day;
// ISO week and ISO week-year (Monday start; 2015-12-31 is in 2015-W53, 2016-01-03 too).
const yw: Bucketer = (w) => w.weekYear * 100 + w.weekNumber;
const ym: Bucketer = (w) => w.year * 100 + w.month;
const y: Bucketer = (w) => w.year;
// keep_last: every snapshot is its own bucket.
const always: Bucketer = (_w, nr) => nr;

/** `keep_last`…`keep_yearly`: keep the newest snapshot of each of the N newest buckets. */
const COUNT_RULES: ReadonlyArray<{ key: CountRuleKey; bucket: Bucketer; reason: string }> = [
  { key: 'keep_last', bucket: always, reason: 'last snapshot' },
  { key: 'keep_hourly', bucket: ymdh, reason: 'hourly snapshot' },
  { key: 'keep_daily', bucket: ymd, reason: 'daily snapshot' },
  { key: 'keep_weekly', bucket: yw, reason: 'weekly snapshot' },
  { key: 'keep_monthly', bucket: ym, reason: 'monthly snapshot' },
  { key: 'keep_yearly', bucket: y, reason: 'yearly snapshot' },
];

/** `keep_within_hourly`…: keep the newest snapshot of each bucket inside the window. */
const WITHIN_BUCKET_RULES: ReadonlyArray<{ key: WithinBucketRuleKey; bucket: Bucketer; reason: string }> = [
  { key: 'keep_within_hourly', bucket: ymdh, reason: 'hourly within' },
  { key: 'keep_within_daily', bucket: ymd, reason: 'daily within' },
  { key: 'keep_within_weekly', bucket: yw, reason: 'weekly within' },
  { key: 'keep_within_monthly', bucket: ym, reason: 'monthly within' },
  { key: 'keep_within_yearly', bucket: y, reason: 'yearly within' },
];

export const COUNT_RULE_KEYS: readonly CountRuleKey[] = COUNT_RULES.map((r) => r.key);
export const DURATION_RULE_KEYS: readonly ('keep_within' | WithinBucketRuleKey)[] = [
  'keep_within',
  ...WITHIN_BUCKET_RULES.map((r) => r.key),
];

/** A count is "set" when it is N ≥ 1 or -1 (unlimited); 0 and absent mean not set, as in restic. */
function activeCount(rules: RetentionRules, key: CountRuleKey): number {
  const n = rules[key];
  if (n === undefined || n === 0) return 0;
  if (!Number.isInteger(n) || n < -1) {
    throw new RangeError(`${key}: ${n} is not a count (use N ≥ 1, or -1 for unlimited)`);
  }
  return n;
}

/** A parsed keep_within* duration, or undefined when not set (absent or zero, as in restic). */
function activeDuration(rules: RetentionRules, key: 'keep_within' | WithinBucketRuleKey): ResticDuration | undefined {
  const text = rules[key];
  if (text === undefined) return undefined;
  const d = parseDuration(text);
  if (hasNegativePart(d)) throw new RangeError(`${key}: durations containing negative values are not allowed`);
  return isZeroDuration(d) ? undefined : d;
}

/**
 * restic's findLatestTimestamp: the newest snapshot time not after `now`. Snapshots after `now`
 * (clock skew, a restored catalog) do not move the window; they still count for bucket rules.
 * Undefined when every snapshot is after `now`: restic then measures from Go's zero time, which
 * puts every snapshot inside every window; the caller does the same.
 */
function latestNotAfter(sorted: readonly RetentionSnapshot[], now: Date | undefined): number | undefined {
  const limit = now?.getTime() ?? Number.POSITIVE_INFINITY;
  for (const s of sorted) {
    if (s.time.getTime() <= limit) return s.time.getTime();
  }
  return undefined;
}

/** Apply the rules to one pool of snapshots (one unit's scheduled backups in one storage). */
export function applyRetention(
  snapshots: readonly RetentionSnapshot[],
  rules: RetentionRules,
  opts: RetentionOptions,
): RetentionResult {
  ianaZone(opts.timezone); // throws RangeError for an unknown zone, before any work
  const toWall = wallClock(opts.timezone);
  if (opts.now !== undefined && Number.isNaN(opts.now.getTime())) throw new RangeError('now: invalid Date');
  const seen = new Set<string>();
  for (const s of snapshots) {
    // Ids key the reasons map, so a duplicate would make the result ambiguous.
    if (seen.has(s.id)) throw new RangeError(`duplicate snapshot id ${JSON.stringify(s.id)}`);
    seen.add(s.id);
    if (Number.isNaN(s.time.getTime())) throw new RangeError(`snapshot ${JSON.stringify(s.id)}: invalid time`);
  }

  // Newest first; Array.prototype.sort is stable, so equal times keep their input order (restic: sort.Stable).
  const sorted = [...snapshots].sort((a, b) => b.time.getTime() - a.time.getTime());

  const counts = COUNT_RULES.map((r) => ({ ...r, left: activeCount(rules, r.key), last: -1 }));
  const within = activeDuration(rules, 'keep_within');
  const withinBuckets = WITHIN_BUCKET_RULES.map((r) => ({ ...r, within: activeDuration(rules, r.key), last: -1 }));

  const policyEmpty = within === undefined && counts.every((c) => c.left === 0) && withinBuckets.every((b) => b.within === undefined);
  if (policyEmpty) {
    const keep = sorted.map((s) => s.id);
    return { keep, prune: [], reasons: Object.fromEntries(keep.map((id) => [id, [EMPTY_POLICY_REASON]])) };
  }

  const latest = latestNotAfter(sorted, opts.now);
  // The window start for a duration: snapshots strictly after it are inside.
  const threshold = (d: ResticDuration): number =>
    latest === undefined ? Number.NEGATIVE_INFINITY : subtractDuration(new Date(latest), d, opts.timezone).getTime();
  const withinThreshold = within === undefined ? undefined : threshold(within);
  const bucketThresholds = withinBuckets.map((b) => (b.within === undefined ? undefined : threshold(b.within)));

  const keep: string[] = [];
  const prune: string[] = [];
  // Entries, not `reasons[id] = …`: an id such as "__proto__" must become an own key.
  const reasonEntries: [string, string[]][] = [];
  const oldest = sorted.length - 1;

  sorted.forEach((cur, nr) => {
    const t = cur.time.getTime();
    const wall = toWall(t);
    const matches: string[] = [];

    if (within !== undefined && withinThreshold !== undefined && t > withinThreshold) {
      matches.push(`within ${formatDuration(within)}`);
    }

    for (const c of counts) {
      if (c.left === 0) continue;
      const val = c.bucket(wall, nr);
      // The oldest snapshot is kept while the rule has counts left: it stretches the history kept.
      if (val !== c.last || nr === oldest) {
        matches.push(val === c.last ? `oldest ${c.reason}` : c.reason);
        c.last = val;
        if (c.left > 0) c.left--;
      }
    }

    withinBuckets.forEach((b, i) => {
      const limit = bucketThresholds[i];
      if (b.within === undefined || limit === undefined || !(t > limit)) return;
      const val = b.bucket(wall, nr);
      if (val !== b.last || nr === oldest) {
        const reason = val === b.last ? `oldest ${b.reason}` : b.reason;
        matches.push(`${reason} ${formatDuration(b.within)}`);
        b.last = val;
      }
    });

    if (matches.length > 0) {
      keep.push(cur.id);
      reasonEntries.push([cur.id, matches]);
    } else {
      prune.push(cur.id);
    }
  });

  return { keep, prune, reasons: Object.fromEntries(reasonEntries) };
}
