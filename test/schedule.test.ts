import { describe, expect, it } from 'vitest';
import { dueness, lastFire, nextFire } from '../src/planner/schedule.js';

// Fixed clocks, named cases (Velero's schedule tests): the planner never reads the wall clock.
const cases: { name: string; cron: string; tz: string; now: string; newest?: string; due: boolean; lastFire: string }[] = [
  { name: 'never backed up', cron: '0 23 * * *', tz: 'UTC', now: '2026-11-21T12:00:00Z', due: true, lastFire: '2026-11-20T23:00:00.000Z' },
  { name: 'exactly at the fire time', cron: '0 23 * * *', tz: 'UTC', now: '2026-11-21T23:00:00Z', newest: '2026-11-20T23:00:00Z', due: true, lastFire: '2026-11-21T23:00:00.000Z' },
  { name: 'almost but not quite time to run', cron: '0 23 * * *', tz: 'UTC', now: '2026-11-21T22:59:59Z', newest: '2026-11-20T23:00:00Z', due: false, lastFire: '2026-11-20T23:00:00.000Z' },
  { name: 'backup taken at the fire time is up to date', cron: '0 23 * * *', tz: 'UTC', now: '2026-11-21T23:30:00Z', newest: '2026-11-21T23:00:00Z', due: false, lastFire: '2026-11-21T23:00:00.000Z' },
  { name: 'a week of missed fires gives one backup', cron: '0 23 * * *', tz: 'UTC', now: '2026-11-28T23:30:00Z', newest: '2026-11-21T23:00:00Z', due: true, lastFire: '2026-11-28T23:00:00.000Z' },
  { name: 'time zone: 23:00 in Paris is 22:00 UTC in winter', cron: '0 23 * * *', tz: 'Europe/Paris', now: '2026-11-21T22:30:00Z', newest: '2026-11-20T22:00:00Z', due: true, lastFire: '2026-11-21T22:00:00.000Z' },
  { name: 'time zone: 21:30 UTC is before 23:00 in Paris', cron: '0 23 * * *', tz: 'Europe/Paris', now: '2026-11-21T21:30:00Z', newest: '2026-11-20T22:00:00Z', due: false, lastFire: '2026-11-20T22:00:00.000Z' },
  { name: 'time zone: summer time, 23:00 in Paris is 21:00 UTC', cron: '0 23 * * *', tz: 'Europe/Paris', now: '2026-07-01T21:30:00Z', newest: '2026-06-30T21:00:00Z', due: true, lastFire: '2026-07-01T21:00:00.000Z' },
  { name: 'weekly on Sunday, checked on Wednesday', cron: '0 3 * * 0', tz: 'UTC', now: '2026-11-25T12:00:00Z', newest: '2026-11-22T03:00:00Z', due: false, lastFire: '2026-11-22T03:00:00.000Z' },
  { name: 'on-demand backups do not count: newest scheduled is old', cron: '0 3 * * 0', tz: 'UTC', now: '2026-11-30T12:00:00Z', newest: '2026-11-22T03:00:00Z', due: true, lastFire: '2026-11-29T03:00:00.000Z' },
];

describe('schedule due-ness', () => {
  it.each(cases)('$name', (c) => {
    const sched = { cron: c.cron, timezone: c.tz };
    const now = new Date(c.now);
    expect(lastFire(sched, now).toISOString()).toBe(c.lastFire);
    const d = dueness(sched, c.newest ? new Date(c.newest) : undefined, now);
    expect(d.due).toBe(c.due);
    expect(d.reason).toMatch(c.due ? /^due: / : /^up to date: /);
  });

  it('names the last backup and the fire time in the reason', () => {
    const d = dueness({ cron: '0 23 * * *', timezone: 'UTC' }, new Date('2026-11-20T23:00:00Z'), new Date('2026-11-21T23:10:00Z'));
    expect(d.reason).toBe('due: last scheduled backup 2026-11-20T23:00Z, schedule 0 23 * * * (UTC) fired 2026-11-21T23:00Z');
  });

  it('next fire is strictly after now', () => {
    expect(nextFire({ cron: '0 23 * * *', timezone: 'UTC' }, new Date('2026-11-21T23:00:00Z')).toISOString()).toBe('2026-11-22T23:00:00.000Z');
  });
});
