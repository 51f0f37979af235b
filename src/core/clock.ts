import { UserError } from './diagnostics.js';

/**
 * The one place that reads the wall clock. `--now` / `BKP_NOW` fix it, so plans and simulated
 * weeks of applies are reproducible; everything else receives a Clock.
 */
export interface Clock {
  now(): Date;
  /** True when the time was fixed by --now or BKP_NOW. */
  fixed: boolean;
}

export function makeClock(fixed: string | undefined): Clock {
  if (!fixed) return { now: () => new Date(), fixed: false };
  const t = new Date(fixed);
  if (Number.isNaN(t.getTime())) throw new UserError(`--now / BKP_NOW: "${fixed}" is not an ISO-8601 time (e.g. 2026-11-21T23:00:00Z)`);
  return { now: () => new Date(t.getTime()), fixed: true };
}
