import type { RetentionRules } from '../policy/types.js';
import type { BackupKind } from './types.js';
import { applyRetention } from './retention.js';

/** A backup as retention sees it: an id, a start time and its pool. */
export interface RetainedItem {
  id: string;
  time: Date;
  kind: BackupKind;
}

/** Keep/prune for one unit in one storage, with the reasons each backup is kept. */
export interface UnitRetention {
  keep: string[];
  prune: string[];
  reasons: Record<string, string[]>;
}

/** The scheduled-pool rules, i.e. everything but keep_on_demand. */
export function scheduledRules(rules: RetentionRules): RetentionRules {
  const { keep_on_demand: _ignored, ...rest } = rules;
  return rest;
}

/** `keep_daily 6, keep_weekly 4`: the rules as the plan's reasons name them. */
export function describeRules(rules: RetentionRules): string {
  const parts = Object.entries(rules)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : 'no rule';
}

export const SAFETY_NEWEST = 'newest good backup of the unit (safety rule: never pruned)';

/**
 * Retention for one unit (DESIGN §5): scheduled backups by the keep_* rules with restic
 * semantics, on-demand backups by keep_on_demand (the N newest; kept all when absent), and the
 * newest good backup of the unit always kept. `items` are in catalog order (oldest first) and may
 * include a planned backup (its id is not a real one); `newestExisting` is the id of the newest
 * backup that really exists, which the safety rule protects.
 */
export function retainUnit(items: RetainedItem[], rules: RetentionRules, timezone: string, now: Date, newestExisting?: string): UnitRetention {
  const reasons: Record<string, string[]> = {};
  const keep = new Set<string>();

  const scheduled = items.filter((i) => i.kind === 'scheduled');
  const sched = applyRetention(scheduled.map(({ id, time }) => ({ id, time })), scheduledRules(rules), { timezone, now });
  for (const id of sched.keep) {
    keep.add(id);
    reasons[id] = [...(sched.reasons[id] ?? [])];
  }

  const onDemand = items.filter((i) => i.kind === 'on_demand');
  const n = rules.keep_on_demand;
  // Newest first; equal times keep catalog order, as restic does.
  const newestFirst = onDemand.map((item, index) => ({ item, index })).sort((a, b) => b.item.time.getTime() - a.item.time.getTime() || a.index - b.index);
  newestFirst.forEach(({ item }, rank) => {
    if (n === undefined || n === -1 || rank < n) {
      keep.add(item.id);
      reasons[item.id] = [n === undefined ? 'on-demand (no keep_on_demand rule: kept)' : `on-demand snapshot (keep_on_demand ${n})`];
    }
  });

  if (newestExisting && !keep.has(newestExisting)) {
    keep.add(newestExisting);
    reasons[newestExisting] = [SAFETY_NEWEST];
  }

  const ordered = [...items].reverse();
  return {
    keep: ordered.filter((i) => keep.has(i.id)).map((i) => i.id),
    prune: ordered.filter((i) => !keep.has(i.id)).map((i) => i.id),
    reasons,
  };
}
