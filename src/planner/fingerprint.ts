import { createHash } from 'node:crypto';
import type { ObservedState } from './types.js';

/**
 * A digest of what was observed that a plan depends on: the backups and incomplete artifacts in
 * each storage, the units of each target and the revisions of its resources. Locks are left out: they come and go with every
 * apply and are checked again when the apply takes its own.
 */
export function observedFingerprint(observed: ObservedState): string {
  // Hashed in a canonical order (storages and targets by name, keys as text) without building
  // one big sorted array: a catalog of 365,000 backups made that the slowest part of planning.
  const hash = createHash('sha256');
  const byName = <T extends { name: string }>(xs: T[]) => [...xs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const s of byName(observed.storages)) {
    hash.update(`s ${s.name}${s.error ? ' error' : ''}\n`);
    for (const k of sortedKeys(s.backups.map((b) => b.key))) hash.update(`b ${k}\n`);
    for (const k of sortedKeys(s.incomplete.map((i) => i.key))) hash.update(`i ${k}\n`);
  }
  for (const t of byName(observed.targets)) {
    hash.update(`t ${t.name} ${[...t.units].sort().join(',')}\n`);
    // A resource changed since the plan (another apply, a hand edit) makes the plan stale; a
    // running task that completes does not, or no plan with a replication in flight would apply.
    for (const r of byName(t.resources ?? [])) hash.update(`r ${r.kind} ${r.name} ${r.revision ?? ''} ${r.deleted ? 'deleted' : ''} ${r.managed}\n`);
  }
  return hash.digest('hex');
}

/** Keys sorted as text, skipping the sort when they already are (observe sorts them). */
function sortedKeys(keys: string[]): string[] {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return keys.sort();
  return keys;
}
