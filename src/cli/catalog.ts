import type { Policy, Target } from '../policy/types.js';
import type { BackupRecord, ObservedStorage } from '../planner/types.js';
import { openStoragesFor, type OpenStorages } from '../apply/observe.js';
import { observeStorage } from '../storage/observe-storage.js';
import { readManifest } from '../storage/read-manifest.js';
import { UserError } from '../core/diagnostics.js';

/** The catalog of some targets, manifests read: what list, verify and restore work from. */
export interface Catalog {
  storages: OpenStorages;
  observed: ObservedStorage[];
  /** Manifests that could not be read, by backup key. */
  unreadable: Map<string, string>;
}

export async function readCatalog(policy: Policy, targets: Target[], storageName?: string): Promise<Catalog> {
  if (storageName && !policy.storages[storageName]) {
    throw new UserError(`unknown storage "${storageName}" in ${policy.file} (storages: ${Object.keys(policy.storages).join(', ')})`);
  }
  const storages = await openStoragesFor(policy, targets);
  const observed: ObservedStorage[] = [];
  const unreadable = new Map<string, string>();
  for (const [name, storage] of storages) {
    if (storageName && name !== storageName) continue;
    const o = await observeStorage(storage, targets.filter((t) => t.storage.includes(name)).map((t) => t.name));
    if (o.error) throw new UserError(o.error);
    for (const b of o.backups) {
      try {
        b.manifest = await readManifest(storage, b);
      } catch (err) {
        unreadable.set(`${name}:${b.key}`, (err as Error).message);
      }
    }
    observed.push(o);
  }
  return { storages, observed, unreadable };
}

/** Good backups of one unit, oldest first, across the catalog's storages (primary first). */
export function unitBackups(catalog: Catalog, target: string, unit?: string): BackupRecord[] {
  return catalog.observed.flatMap((o) => o.backups.filter((b) => b.target === target && (!unit || b.unit === unit) && b.manifest));
}
