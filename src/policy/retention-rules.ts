import type { RetentionRules } from './types.js';

/** Rules that act on scheduled backups; `keep_on_demand` is a separate pool (DESIGN §5). */
export const SCHEDULED_COUNTS = ['keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly'] as const;
export const SCHEDULED_WITHINS = [
  'keep_within', 'keep_within_hourly', 'keep_within_daily', 'keep_within_weekly', 'keep_within_monthly', 'keep_within_yearly',
] as const;

/** True when at least one scheduled-pool rule keeps something: a count other than 0, or a duration that is not all zeros. */
export function keepsScheduledBackups(r: Partial<Record<keyof RetentionRules, unknown>>): boolean {
  return SCHEDULED_COUNTS.some((k) => typeof r[k] === 'number' && r[k] !== 0)
    || SCHEDULED_WITHINS.some((k) => typeof r[k] === 'string' && /[1-9]/.test(r[k]));
}
