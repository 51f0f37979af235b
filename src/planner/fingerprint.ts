import { createHash } from 'node:crypto';
import type { ObservedState } from './types.js';

/**
 * A digest of what was observed that a plan depends on: the backups and incomplete artifacts in
 * each storage and the units of each target. Locks are left out: they come and go with every
 * apply and are checked again when the apply takes its own.
 */
export function observedFingerprint(observed: ObservedState): string {
  const lines: string[] = [];
  for (const s of observed.storages) {
    for (const b of s.backups) lines.push(`b ${s.name} ${b.key}`);
    for (const i of s.incomplete) lines.push(`i ${s.name} ${i.key}`);
    if (s.error) lines.push(`e ${s.name}`);
  }
  for (const t of observed.targets) lines.push(`t ${t.name} ${[...t.units].sort().join(',')}`);
  lines.sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}
