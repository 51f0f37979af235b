import { describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import { wallClock } from '../src/planner/wall-clock.js';

// The fast wall clock must agree with luxon (Intl) everywhere: across DST changes, year ends and
// ISO week-years, in zones with half- and quarter-hour offsets.
const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Pacific/Chatham', 'America/St_Johns', 'Asia/Tehran'];

describe('wallClock agrees with luxon', () => {
  it.each(zones)('%s: every 7 minutes through 2026, and random instants 1970–2100', (zone) => {
    const fast = wallClock(zone);
    const check = (ms: number) => {
      const dt = DateTime.fromMillis(ms, { zone });
      expect(fast(ms), `${zone} ${new Date(ms).toISOString()}`).toEqual({ year: dt.year, month: dt.month, day: dt.day, hour: dt.hour, weekYear: dt.weekYear, weekNumber: dt.weekNumber });
    };
    for (let ms = Date.UTC(2026, 0, 1); ms < Date.UTC(2027, 0, 3); ms += 7 * 60_000) check(ms);
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 2000; i++) check(Math.floor(rnd() * Date.UTC(2100, 0, 1)));
  });
});
