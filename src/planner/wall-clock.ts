import { ianaZone } from './duration.js';

/** The calendar fields retention buckets are made of, read in one time zone. */
export interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  /** ISO-8601 week-numbering year and week (Monday start). */
  weekYear: number;
  weekNumber: number;
}

const DAY_MS = 86_400_000;
/** Offsets change only on whole quarter hours (every zone in tzdata), so one lookup per slot is exact. */
const SLOT_MS = 15 * 60_000;

/**
 * Returns a function from an instant to its wall-clock fields in `timezone`. Retention reads
 * hundreds of thousands of backups; a luxon DateTime per backup costs seconds, so the zone offset
 * is looked up once per quarter-hour slot and the fields computed with UTC arithmetic.
 */
export function wallClock(timezone: string): (ms: number) => Wall {
  const utc = timezone === 'UTC' || timezone === 'Etc/UTC';
  const zone = utc ? undefined : ianaZone(timezone);
  const offsets = new Map<number, number>();
  return (ms: number): Wall => {
    let offset = 0;
    if (zone) {
      const slot = Math.floor(ms / SLOT_MS);
      const cached = offsets.get(slot);
      offset = cached ?? zone.offset(ms) * 60_000;
      if (cached === undefined) offsets.set(slot, offset);
    }
    const d = new Date(ms + offset);
    const year = d.getUTCFullYear();
    const month = d.getUTCMonth() + 1;
    const day = d.getUTCDate();
    // ISO week: the week (Monday start) that holds this date's Thursday belongs to that Thursday's year.
    const midnight = Date.UTC(year, month - 1, day);
    const mondayBased = (d.getUTCDay() + 6) % 7;
    const thursday = midnight + (3 - mondayBased) * DAY_MS;
    const weekYear = new Date(thursday).getUTCFullYear();
    const weekNumber = 1 + Math.floor((thursday - Date.UTC(weekYear, 0, 1)) / (7 * DAY_MS));
    return { year, month, day, hour: d.getUTCHours(), weekYear, weekNumber };
  };
}
