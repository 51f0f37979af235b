import type { RetentionRules, Target } from '../policy/types.js';
import type { BackupAction, BackupRecord, CopyAction, PruneAction } from './types.js';
import { describeRules, retainUnit, scheduledRules, type RetainedItem } from './unit-retention.js';

/** Id of the backup a plan is about to take, as retention sees it before it exists. */
export const PLANNED = '(planned)';

/** What one storage of a unit needs: the prunes its retention asks for, and copies it lacks. */
export interface StoragePlan {
  copies: CopyAction[];
  prunes: PruneAction[];
}

/**
 * Retention and copies for one unit in one storage. `own` are the backups the storage holds;
 * `elsewhere` the backups other storages of the target hold (the primary first), candidates for
 * a copy; `planned` the backup this apply takes in the primary. Retention runs over everything
 * the storage would hold, so only backups its rules keep are copied, and nothing is copied just
 * to be pruned. Pure.
 */
export function planStorageUnit(
  target: Target,
  unit: string,
  storage: string,
  isPrimary: boolean,
  own: BackupRecord[],
  elsewhere: BackupRecord[],
  rules: RetentionRules,
  now: Date,
  planned: BackupAction | undefined,
): StoragePlan {
  const ownIds = new Set(own.map((b) => b.id));
  const candidates = new Map<string, BackupRecord>();
  if (!isPrimary) for (const b of elsewhere) if (!ownIds.has(b.id) && !candidates.has(b.id)) candidates.set(b.id, b);
  const records = [...own, ...candidates.values()].sort((a, b) => (a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1 : 0));
  if (records.length === 0 && !planned) return { copies: [], prunes: [] };

  const items: RetainedItem[] = records.map((b) => ({ id: b.id, time: new Date(b.started_at), kind: b.kind }));
  if (planned) items.push({ id: PLANNED, time: now, kind: planned.backup_kind });
  // Never prune the newest good backup. With a backup planned, prunes wait for it (and, in a
  // secondary storage, for its copy): then it is the newest; otherwise protect the newest held.
  const protect = planned || own.length === 0 ? undefined : own[own.length - 1]!.id;
  const kept = retainUnit(items, rules, target.schedule.timezone, now, protect);
  const keep = new Set(kept.keep);

  const copies: CopyAction[] = [];
  const copyOf = (id: string) => `copy.${storage}.${target.name}.${unit}.${id === PLANNED ? 'new' : id}`;
  if (!isPrimary) {
    for (const b of records) {
      if (ownIds.has(b.id) || !keep.has(b.id)) continue;
      copies.push({
        id: copyOf(b.id),
        kind: 'copy',
        op: 'create',
        target: target.name,
        unit,
        storage,
        reason: `copy: ${b.storage} holds it and ${storage} does not; kept there by ${(kept.reasons[b.id] ?? []).join(', ')}`,
        source: { storage: b.storage, id: b.id, key: b.key, manifest_key: b.manifestKey, started_at: b.started_at, kind: b.kind },
      });
    }
    if (planned && keep.has(PLANNED)) {
      copies.push({
        id: copyOf(PLANNED),
        kind: 'copy',
        op: 'create',
        target: target.name,
        unit,
        storage,
        reason: `copy: the backup this apply takes in ${planned.storage}`,
        source: { storage: planned.storage, kind: planned.backup_kind },
        requires: planned.id,
      });
    }
  }

  const requires = planned ? (isPrimary ? planned.id : copies.find((c) => c.requires === planned.id)?.id ?? planned.id) : undefined;
  const prunes: PruneAction[] = own
    .filter((b) => !keep.has(b.id))
    .map((b) => ({
      id: `prune.${storage}.${target.name}.${unit}.${b.id}`,
      kind: 'prune' as const,
      op: 'delete' as const,
      target: target.name,
      unit,
      storage,
      reason: b.kind === 'on_demand' ? `prune: on-demand backup beyond keep_on_demand ${rules.keep_on_demand}` : `prune: not kept by ${describeRules(scheduledRules(rules))}`,
      before: { id: b.id, key: b.key, manifest_key: b.manifestKey, started_at: b.started_at, kind: b.kind, size: b.size },
      ...(requires ? { requires } : {}),
    }));
  return { copies, prunes };
}
