import type { Diagnostic } from '../core/diagnostics.js';
import type { BackupRecord, PruneAction } from './types.js';

/**
 * The mass-prune rule (DESIGN §5): a plan that prunes more than half of a target's backups (the
 * ones it is about to take included), or every backup of one unit in a storage, is refused unless `--allow-mass-prune` is given. It
 * catches a retention typo (keep_daily: 7 where 70 was meant) before it deletes a year of backups.
 */
export function massPruneDiagnostics(target: string, existing: BackupRecord[], planned: { storage: string; unit: string }[], prunes: PruneAction[], allow: boolean): Diagnostic[] {
  if (prunes.length === 0) return [];
  // Planned backups and copies count: the prunes of their unit run only once they exist (`requires`).
  const total = existing.length + planned.length;
  const problems: string[] = [];
  if (prunes.length * 2 > total) {
    problems.push(`prunes ${prunes.length} of its ${total} backups (more than half)`);
  }
  const perUnit = new Map<string, number>();
  for (const b of [...existing, ...planned]) perUnit.set(`${b.storage}\u0000${b.unit}`, (perUnit.get(`${b.storage}\u0000${b.unit}`) ?? 0) + 1);
  const prunedPerUnit = new Map<string, number>();
  for (const p of prunes) prunedPerUnit.set(`${p.storage}\u0000${p.unit}`, (prunedPerUnit.get(`${p.storage}\u0000${p.unit}`) ?? 0) + 1);
  for (const [key, n] of prunedPerUnit) {
    if (n === perUnit.get(key)) {
      const [storage, unit] = key.split('\u0000');
      problems.push(`prunes every backup of unit ${unit} in storage ${storage}`);
    }
  }
  if (problems.length === 0) return [];
  return [
    {
      severity: allow ? 'warning' : 'error',
      code: 'plan.mass_prune',
      target,
      summary: `target ${target}: this plan ${problems.join(' and ')}`,
      detail: allow
        ? 'allowed by --allow-mass-prune'
        : 'check the retention change; if it is what you meant, run again with --allow-mass-prune',
    },
  ];
}
