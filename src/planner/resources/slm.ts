import type { RetentionRules, Schedule } from '../../policy/types.js';

/**
 * How a bkp schedule and retention become an Elasticsearch SLM policy (issue 6, `mode: slm`).
 * Pure, and shared by `bkp validate` (which reports what SLM cannot express) and the planner.
 */

export interface SlmRetention {
  expire_after?: string;
  min_count: number;
  max_count?: number;
}

export type Mapped<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * A 5-field cron (`m h dom mon dow`) as the Quartz-style cron SLM takes
 * (`s m h dom mon dow`, one of dom/dow `?`, Sunday = 1). SLM runs schedules in UTC.
 */
export function cronToSlm(schedule: Pick<Schedule, 'cron' | 'timezone'>): Mapped<string> {
  if (schedule.timezone !== 'UTC' && schedule.timezone !== 'Etc/UTC') {
    return { ok: false, error: `SLM runs schedules in UTC; write the cron in UTC (timezone: UTC) for mode: slm, or use mode: managed (timezone is ${schedule.timezone})` };
  }
  const parts = schedule.cron.trim().split(/\s+/);
  if (parts.length !== 5) return { ok: false, error: `SLM takes a 5-field cron here (minute hour day month weekday); got "${schedule.cron}"` };
  const [min, hour, dom, mon, dow] = parts as [string, string, string, string, string];
  if (dow !== '*' && dom !== '*') return { ok: false, error: `SLM (Quartz) cannot fire on both a day of the month and a day of the week ("${schedule.cron}")` };
  const quartzDow = dow === '*' ? '?' : dow.replace(/\d+/g, (d) => String((Number(d) % 7) + 1));
  const quartzDom = dow === '*' ? dom : '?';
  return { ok: true, value: `0 ${min} ${hour} ${quartzDom} ${mon} ${quartzDow}` };
}

/** Whether a cron fires at most once a day: then `keep_daily N` is `max_count N`. */
function firesOncePerDay(cron: string): boolean {
  const [min, hour] = cron.trim().split(/\s+/);
  return /^\d+$/.test(min ?? '') && /^\d+$/.test(hour ?? '');
}

/**
 * bkp's retention in SLM's terms. SLM keeps by age (`expire_after`) and count
 * (`min_count`/`max_count`) only, so `keep_last`, `keep_within` in days or hours, and
 * `keep_daily` on a schedule that fires once a day map exactly; calendar buckets (weekly,
 * monthly, yearly, the `keep_within_*` family) cannot be expressed. `min_count` is always at
 * least 1: like bkp, SLM then never deletes the newest snapshot.
 */
export function retentionToSlm(r: RetentionRules, cron: string): Mapped<SlmRetention> {
  const unsupported = (['keep_hourly', 'keep_weekly', 'keep_monthly', 'keep_yearly', 'keep_within_hourly', 'keep_within_daily', 'keep_within_weekly', 'keep_within_monthly', 'keep_within_yearly'] as const)
    .filter((k) => r[k] !== undefined);
  if (unsupported.length > 0) {
    return { ok: false, error: `SLM retention keeps by age and count only; ${unsupported.join(', ')} cannot be expressed in SLM: use keep_last, keep_daily (with a once-a-day cron) or keep_within, or mode: managed` };
  }
  if (r.keep_daily !== undefined && !firesOncePerDay(cron)) {
    return { ok: false, error: `keep_daily maps to SLM's max_count only when the schedule fires once a day ("${cron}" may fire more often): use keep_last, or mode: managed` };
  }
  const counts = [r.keep_last, r.keep_daily].filter((n): n is number => n !== undefined);
  if (counts.includes(-1)) return { ok: false, error: 'SLM has no "unlimited" count: leave the rule out instead of -1' };
  const out: SlmRetention = { min_count: 1 };
  if (counts.length > 0) out.max_count = Math.max(...counts);
  if (r.keep_within !== undefined) {
    const m = /^(?:(\d+)d)?(?:(\d+)h)?$/.exec(r.keep_within);
    if (!m || (!m[1] && !m[2])) return { ok: false, error: `keep_within ${r.keep_within}: SLM's expire_after takes days and hours only (e.g. 7d, 36h)` };
    const hours = Number(m[1] ?? 0) * 24 + Number(m[2] ?? 0);
    out.expire_after = hours % 24 === 0 ? `${hours / 24}d` : `${hours}h`;
  }
  if (out.max_count === undefined && out.expire_after === undefined) {
    return { ok: false, error: 'SLM needs keep_last, keep_daily or keep_within to know when snapshots expire' };
  }
  if (out.max_count !== undefined) out.min_count = Math.min(out.max_count, Math.max(1, out.min_count));
  return { ok: true, value: out };
}
