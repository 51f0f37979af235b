/**
 * Retention durations as restic writes them (`7d`, `1y2m3d4h`), and the calendar arithmetic
 * restic does with them (DESIGN §5).
 *
 * Ported from restic's `internal/data/duration.go` (ParseDuration, String, Zero) and from the
 * expression `latest.AddDate(-y, -m, -d).Add(-h * time.Hour)` in
 * `internal/data/snapshot_policy.go`. Pure: no clock, no I/O.
 */
import { IANAZone } from 'luxon';

/** restic's `Duration`: calendar units, not a fixed number of milliseconds. */
export interface ResticDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/** A duration string restic would refuse; the message uses restic's wording. */
export class DurationSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DurationSyntaxError';
  }
}

const UNIT_FIELDS: Readonly<Record<string, keyof ResticDuration>> = {
  y: 'years',
  m: 'months',
  d: 'days',
  h: 'hours',
};

/**
 * Parse a restic duration, accepting exactly what restic's ParseDuration accepts:
 * - surrounding white space is ignored, inner white space is not;
 * - each part is an optional `-`, ASCII digits, then one of `y m d h` (no `w`, no `s`);
 * - parts may come in any order and a repeated unit overwrites the earlier one (`1d2d` is 2d);
 * - the empty string is the zero duration.
 * Negative parts parse (restic's parser allows them); `forget` refuses them, and so does our
 * retention validation, see `hasNegativePart`.
 */
export function parseDuration(text: string): ResticDuration {
  const d: ResticDuration = { years: 0, months: 0, days: 0, hours: 0 };
  let rest = text.trim();
  while (rest !== '') {
    let i = 0;
    const negative = rest[0] === '-';
    if (negative) i = 1;
    const digitsStart = i;
    while (i < rest.length && rest.charCodeAt(i) >= 48 && rest.charCodeAt(i) <= 57) i++;
    const digits = rest.slice(digitsStart, i);
    if (digits === '') throw new DurationSyntaxError('no number found');
    const magnitude = Number(digits);
    // restic's strconv.Atoi would panic here; we refuse instead of losing precision.
    if (!Number.isSafeInteger(magnitude)) throw new DurationSyntaxError(`number ${digits} is too large`);
    const num = negative ? -magnitude : magnitude;
    if (i >= rest.length) throw new DurationSyntaxError(`no unit found after number ${num}`);
    const unit = rest[i] ?? '';
    const field = UNIT_FIELDS[unit];
    if (field === undefined) {
      // Go's %q of a byte prints a quoted character literal, e.g. 'w'.
      throw new DurationSyntaxError(`invalid unit '${unit}' found after number ${num}`);
    }
    d[field] = num;
    rest = rest.slice(i + 1);
  }
  return d;
}

/** restic's Duration.String(): canonical y m d h order, zero parts left out (`5d7m` → `7m5d`). */
export function formatDuration(d: ResticDuration): string {
  let s = '';
  if (d.years !== 0) s += `${d.years}y`;
  if (d.months !== 0) s += `${d.months}m`;
  if (d.days !== 0) s += `${d.days}d`;
  if (d.hours !== 0) s += `${d.hours}h`;
  return s;
}

/** restic's Duration.Zero(): a zero duration means "option not set". */
export function isZeroDuration(d: ResticDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/** `forget` refuses durations with a negative part ("durations containing negative values…"). */
export function hasNegativePart(d: ResticDuration): boolean {
  return d.years < 0 || d.months < 0 || d.days < 0 || d.hours < 0;
}

/** Whether `name` is an IANA zone this runtime knows (luxon asks Intl). */
export function isValidTimeZone(name: string): boolean {
  return IANAZone.isValidZone(name);
}

const zoneCache = new Map<string, IANAZone>();

/** A luxon zone for an IANA name; throws RangeError for a name Intl does not know. */
export function ianaZone(name: string): IANAZone {
  let zone = zoneCache.get(name);
  if (zone === undefined) {
    if (!IANAZone.isValidZone(name)) throw new RangeError(`unknown IANA time zone: ${JSON.stringify(name)}`);
    zone = IANAZone.create(name);
    zoneCache.set(name, zone);
  }
  return zone;
}

/** Offset of `zone` at instant `ms`, in milliseconds. */
function offsetMs(zone: IANAZone, ms: number): number {
  return zone.offset(ms) * 60_000;
}

/** ECMAScript's limit for a time value: beyond it a Date is invalid. */
const MAX_TIME_MS = 8.64e15;

/**
 * The instant for wall-clock time `wallMs` (the wall clock written as if it were UTC) in `zone`,
 * resolved the way Go's `time.Date` resolves it, so that `subtractDuration` matches restic even
 * across DST changes: take the offset in force at the wall value read as UTC; if wall−offset
 * lies outside that offset's period, take the offset in force at wall−offset instead.
 * Effect, as in Go: a wall time in a spring-forward gap moves by the gap's length (forward east
 * of UTC, backward west of it); a wall time that a fall-back repeats gets the standard-time
 * instant east of UTC and the daylight-time one west of it.
 */
function wallToInstant(wallMs: number, zone: IANAZone): number {
  const first = offsetMs(zone, wallMs);
  const utc = wallMs - first;
  const second = offsetMs(zone, utc);
  // Go compares against the period bounds; "same offset at utc" is the same test except when
  // two adjacent periods share an offset, where either choice gives the same instant.
  return second === first ? utc : wallMs - second;
}

/**
 * `instant` minus `d`, the way restic computes a keep-within threshold:
 * `t.AddDate(-years, -months, -days).Add(-hours * time.Hour)` with `t` read in `timezone`.
 *
 * Years, months and days are calendar steps on the wall clock, normalised like Go's AddDate
 * (which is `time.Date` with overflowing fields): from 31 March one month back is "31 February",
 * which normalises to 3 March (2 March in a leap year). Hours are absolute: 24h across a DST
 * change is not one calendar day.
 *
 * restic does this in each snapshot's own UTC offset (a fixed zone, no DST); bkp does it in the
 * schedule's IANA zone (DESIGN §5), so DST transitions follow Go's `time.Date` rules above.
 * A result before the earliest instant a JS Date can hold (e.g. `9999y` back from year 2016 is
 * fine, `999999y` is not) is clamped to that earliest instant: every real backup is after it.
 */
export function subtractDuration(instant: Date, d: ResticDuration, timezone: string): Date {
  const zone = ianaZone(timezone);
  const t = instant.getTime();
  if (Number.isNaN(t)) throw new RangeError('subtractDuration: invalid Date');
  // The wall clock of `instant` in the zone, as a UTC-based Date so its fields can overflow.
  const wall = new Date(t + offsetMs(zone, t));
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  wall.setUTCFullYear(
    wall.getUTCFullYear() - d.years,
    wall.getUTCMonth() - d.months,
    wall.getUTCDate() - d.days,
  );
  const wallMs = wall.getTime();
  // Keep a day of margin so offset lookups near the limit stay valid.
  if (Number.isNaN(wallMs) || Math.abs(wallMs) > MAX_TIME_MS - 86_400_000) return new Date(-MAX_TIME_MS);
  const result = wallToInstant(wallMs, zone) - d.hours * 3_600_000;
  if (Math.abs(result) > MAX_TIME_MS) return new Date(result < 0 ? -MAX_TIME_MS : MAX_TIME_MS);
  return new Date(result);
}
