import type { Policy, Target } from '../policy/types.js';
import type { BackupRecord, ObservedStorage } from '../planner/types.js';
import { observeEngineCatalog, openStoragesFor, type OpenStorages } from '../apply/observe.js';
import { engineCatalog } from '../planner/resources/index.js';
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
  if (storageName && !policy.storages[storageName] && !targets.some((t) => engineCatalog(t) === storageName)) {
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
  // Engines that keep their own catalog (Elasticsearch snapshots): manifests come built from it.
  for (const t of targets) {
    const name = engineCatalog(t);
    if (!name || (storageName && storageName !== name)) continue;
    const o = await observeEngineCatalog(t, name, () => undefined);
    if (o.error) throw new UserError(o.error);
    observed.push(o);
  }
  return { storages, observed, unreadable };
}

/** The storages a target's backups live in: its own, or its engine's catalog. */
export function storagesOf(t: Target): string[] {
  const name = engineCatalog(t);
  return name ? [name] : t.storage;
}

/** Good backups of one unit, oldest first, across the catalog's storages (primary first). */
export function unitBackups(catalog: Catalog, target: string, unit?: string): BackupRecord[] {
  return catalog.observed.flatMap((o) => o.backups.filter((b) => b.target === target && (!unit || b.unit === unit) && b.manifest));
}
