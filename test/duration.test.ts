import { describe, expect, it } from 'vitest';
import {
  DurationSyntaxError,
  formatDuration,
  hasNegativePart,
  isValidTimeZone,
  isZeroDuration,
  parseDuration,
  subtractDuration,
  type ResticDuration,
} from '../src/planner/duration.js';

const d = (years: number, months: number, days: number, hours: number): ResticDuration => ({ years, months, days, hours });

describe('parseDuration / formatDuration', () => {
  // The first rows are restic's TestParseDuration (internal/data/duration_test.go): input,
  // parsed value, and what restic's Duration.String() prints for it.
  const accepted: { input: string; want: ResticDuration; text: string }[] = [
    { input: '9h', want: d(0, 0, 0, 9), text: '9h' },
    { input: '3d', want: d(0, 0, 3, 0), text: '3d' },
    { input: '4d2h', want: d(0, 0, 4, 2), text: '4d2h' },
    { input: '7m5d', want: d(0, 7, 5, 0), text: '7m5d' },
    { input: '6m4d8h', want: d(0, 6, 4, 8), text: '6m4d8h' },
    { input: '5d7m', want: d(0, 7, 5, 0), text: '7m5d' },
    { input: '4h3d9m', want: d(0, 9, 3, 4), text: '9m3d4h' },
    { input: '-7m5d', want: d(0, -7, 5, 0), text: '-7m5d' },
    { input: '1y4m-5d-3h', want: d(1, 4, -5, -3), text: '1y4m-5d-3h' },
    { input: '2y7m-5d', want: d(2, 7, -5, 0), text: '2y7m-5d' },
    // Ours: the edges of restic's parser.
    { input: '1y2m3d4h', want: d(1, 2, 3, 4), text: '1y2m3d4h' },
    { input: '1y1d1m', want: d(1, 1, 1, 0), text: '1y1m1d' },
    { input: '  5d  ', want: d(0, 0, 5, 0), text: '5d' },
    { input: '1d2d', want: d(0, 0, 2, 0), text: '2d' },
    { input: '0d', want: d(0, 0, 0, 0), text: '' },
    { input: '', want: d(0, 0, 0, 0), text: '' },
    { input: '9999y', want: d(9999, 0, 0, 0), text: '9999y' },
  ];
  it.each(accepted)('parses $input', ({ input, want, text }) => {
    const got = parseDuration(input);
    expect(got).toEqual(want);
    expect(formatDuration(got)).toBe(text);
  });

  // restic's error rows ("2w", "1y4m3w1d", "s", NKO digit zero) plus ours; messages use restic's wording.
  const refused: { input: string; message: string }[] = [
    { input: '2w', message: "invalid unit 'w' found after number 2" },
    { input: '1y4m3w1d', message: "invalid unit 'w' found after number 3" },
    { input: 's', message: 'no number found' },
    { input: '\u07c0', message: 'no number found' },
    { input: '5', message: 'no unit found after number 5' },
    { input: '-', message: 'no number found' },
    { input: '5d 3h', message: 'no number found' },
    { input: '--5d', message: 'no number found' },
    { input: '1.5d', message: "invalid unit '.' found after number 1" },
    { input: '7D', message: "invalid unit 'D' found after number 7" },
    { input: '99999999999999999999y', message: 'number 99999999999999999999 is too large' },
  ];
  it.each(refused)('refuses $input', ({ input, message }) => {
    expect(() => parseDuration(input)).toThrow(DurationSyntaxError);
    expect(() => parseDuration(input)).toThrow(message);
  });

  it('knows zero and negative durations', () => {
    expect(isZeroDuration(parseDuration('0y0m0d0h'))).toBe(true);
    expect(isZeroDuration(parseDuration('1h'))).toBe(false);
    expect(hasNegativePart(parseDuration('1y-1d'))).toBe(true);
    expect(hasNegativePart(parseDuration('1y1d'))).toBe(false);
  });
});

describe('subtractDuration (Go: t.AddDate(-y, -m, -d).Add(-h * time.Hour))', () => {
  // restic's TestDurationTimePattern: from 2025-01-01, how many hours back each duration goes.
  // restic runs it in time.Local; these hold in UTC.
  const resticOffsets: { duration: string; hours: number }[] = [
    { duration: '-2h', hours: -2 },
    { duration: '1d1h', hours: 25 },
    { duration: '1h1d', hours: 25 },
    { duration: '4h', hours: 4 },
    { duration: '1d-2h', hours: 22 },
    { duration: '-1d-2h', hours: -26 },
    { duration: '30d24h', hours: 31 * 24 },
    { duration: '24h30d', hours: 31 * 24 },
    { duration: '1m', hours: 31 * 24 },
    { duration: '2m', hours: (31 + 30) * 24 },
    { duration: '-2m', hours: -(31 + 28) * 24 },
    { duration: '1y', hours: 366 * 24 },
  ];
  it.each(resticOffsets)('restic offset $duration is $hours hours before 2025-01-01', ({ duration, hours }) => {
    const ref = new Date('2025-01-01T00:00:00Z');
    const got = subtractDuration(ref, parseDuration(duration), 'UTC');
    expect((ref.getTime() - got.getTime()) / 3_600_000).toBe(hours);
  });

  const cases: { name: string; from: string; duration: string; zone: string; want: string }[] = [
    { name: 'month end: 31 March 2023 - 1m is 3 March (Go normalises 31 February)', from: '2023-03-31T12:00:00Z', duration: '1m', zone: 'UTC', want: '2023-03-03T12:00:00.000Z' },
    { name: 'month end, leap year: 31 March 2024 - 1m is 2 March', from: '2024-03-31T12:00:00Z', duration: '1m', zone: 'UTC', want: '2024-03-02T12:00:00.000Z' },
    { name: 'month end: 31 May - 1m is 1 May (31 April)', from: '2026-05-31T00:00:00Z', duration: '1m', zone: 'UTC', want: '2026-05-01T00:00:00.000Z' },
    { name: 'leap day: 29 February 2024 - 1y is 1 March 2023', from: '2024-02-29T08:00:00Z', duration: '1y', zone: 'UTC', want: '2023-03-01T08:00:00.000Z' },
    { name: 'calendar steps, then hours: 1y2m3d3h from restic golden newest', from: '2016-01-18T12:02:03Z', duration: '1y2m3d3h', zone: 'UTC', want: '2014-11-15T09:02:03.000Z' },
    { name: 'milliseconds survive', from: '2026-01-10T00:00:00.123Z', duration: '1d', zone: 'UTC', want: '2026-01-09T00:00:00.123Z' },
    { name: 'years 0-99 are not read as 19xx', from: '2016-01-18T12:02:03Z', duration: '1950y', zone: 'UTC', want: '0066-01-18T12:02:03.000Z' },
    { name: 'Paris spring-forward: 1d back is a 23-hour day', from: '2024-03-31T10:00:00Z', duration: '1d', zone: 'Europe/Paris', want: '2024-03-30T11:00:00.000Z' },
    { name: 'Paris spring-forward: 24h back is 24 hours', from: '2024-03-31T10:00:00Z', duration: '24h', zone: 'Europe/Paris', want: '2024-03-30T10:00:00.000Z' },
    { name: 'Paris fall-back: 1d back is a 25-hour day', from: '2024-10-27T11:00:00Z', duration: '1d', zone: 'Europe/Paris', want: '2024-10-26T10:00:00.000Z' },
    // Wall times that do not exist or exist twice resolve the way Go's time.Date does.
    { name: 'Paris gap: 31 March 02:30 does not exist, Go moves it to 03:30 CEST', from: '2024-04-01T00:30:00Z', duration: '1d', zone: 'Europe/Paris', want: '2024-03-31T01:30:00.000Z' },
    { name: 'Paris overlap: 27 October 02:30 exists twice, Go takes the CET one', from: '2024-10-28T01:30:00Z', duration: '1d', zone: 'Europe/Paris', want: '2024-10-27T01:30:00.000Z' },
    { name: 'New York overlap: 3 November 01:30 exists twice, Go takes the EDT one', from: '2024-11-04T06:30:00Z', duration: '1d', zone: 'America/New_York', want: '2024-11-03T05:30:00.000Z' },
    // Go's rule moves a gap time forward east of UTC but backward west of it: traced by hand,
    // lookup(02:30Z) is EST whose period ends 07:00Z, 02:30+5h = 07:30Z is past it, so Go
    // re-reads the offset there (EDT) and answers 02:30+4h = 06:30Z (01:30 EST).
    { name: 'New York gap: 10 March 02:30 does not exist, Go moves it to 01:30 EST', from: '2024-03-11T06:30:00Z', duration: '1d', zone: 'America/New_York', want: '2024-03-10T06:30:00.000Z' },
    { name: 'a month across DST keeps the wall clock', from: '2024-04-15T10:00:00Z', duration: '1m', zone: 'Europe/Paris', want: '2024-03-15T11:00:00.000Z' },
    { name: 'too far back for a JS Date: clamped to the earliest instant', from: '2026-01-01T00:00:00Z', duration: '999999y', zone: 'UTC', want: '-271821-04-20T00:00:00.000Z' },
  ];
  it.each(cases)('$name', ({ from, duration, zone, want }) => {
    expect(subtractDuration(new Date(from), parseDuration(duration), zone).toISOString()).toBe(want);
  });

  it('refuses an unknown zone and an invalid date', () => {
    expect(() => subtractDuration(new Date(0), d(0, 0, 1, 0), 'Mars/Olympus')).toThrow(RangeError);
    expect(() => subtractDuration(new Date(Number.NaN), d(0, 0, 1, 0), 'UTC')).toThrow(RangeError);
    expect(isValidTimeZone('Europe/Paris')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
  });
});
