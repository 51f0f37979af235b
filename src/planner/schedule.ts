import { CronExpressionParser } from 'cron-parser';
import type { Schedule } from '../policy/types.js';

/**
 * The last time the schedule's cron fired at or before `now`, in its time zone. Pure: the clock
 * is an argument. cron-parser's `prev()` is strictly before its current date, hence the +1 ms.
 */
export function lastFire(schedule: Pick<Schedule, 'cron' | 'timezone'>, now: Date): Date {
  const it = CronExpressionParser.parse(schedule.cron, { currentDate: new Date(now.getTime() + 1), tz: schedule.timezone });
  return it.prev().toDate();
}

/** The next time the cron fires strictly after `now`. */
export function nextFire(schedule: Pick<Schedule, 'cron' | 'timezone'>, now: Date): Date {
  const it = CronExpressionParser.parse(schedule.cron, { currentDate: now, tz: schedule.timezone });
  return it.next().toDate();
}

/** Whether a unit is due, and the human reason either way (DESIGN §5). */
export interface Dueness {
  due: boolean;
  reason: string;
}

/**
 * A unit is due when the cron's last fire at or before now is later than the start of its newest
 * good scheduled backup. Many missed fires give one backup, not a catch-up storm.
 */
export function dueness(schedule: Pick<Schedule, 'cron' | 'timezone'>, newestScheduled: Date | undefined, now: Date): Dueness {
  const fired = lastFire(schedule, now);
  const when = `schedule ${schedule.cron} (${schedule.timezone}) fired ${iso(fired)}`;
  if (!newestScheduled) return { due: true, reason: `due: no scheduled backup yet; ${when}` };
  if (fired.getTime() > newestScheduled.getTime()) {
    return { due: true, reason: `due: last scheduled backup ${iso(newestScheduled)}, ${when}` };
  }
  return { due: false, reason: `up to date: last scheduled backup ${iso(newestScheduled)}, next fire ${iso(nextFire(schedule, now))}` };
}

/** `2026-11-21T23:00Z`: minutes are enough for people, and seconds when they matter. */
export function iso(d: Date): string {
  const s = d.toISOString();
  return s.endsWith(':00.000Z') ? `${s.slice(0, 16)}Z` : s.replace('.000Z', 'Z');
}
