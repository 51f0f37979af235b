import type { Policy, Target } from '../policy/types.js';
import type { ObservedState, ObservedStorage, ObservedTarget } from '../planner/types.js';
import type { Storage } from '../storage/types.js';
import { openStorage } from '../storage/registry.js';
import { observeStorage } from '../storage/observe-storage.js';
import { loadProvider } from '../providers/registry.js';
import { isStale } from './locks.js';
import { redact } from '../core/secrets.js';
import { desiredResources, engineCatalog } from '../planner/resources/index.js';

/** The storages a run opened, by name; shared by observe, apply, list and restore. */
export type OpenStorages = Map<string, Storage>;

export async function openStoragesFor(policy: Policy, targets: Target[]): Promise<OpenStorages> {
  const names = [...new Set(targets.flatMap((t) => t.storage))];
  const open: OpenStorages = new Map();
  for (const name of names) open.set(name, await openStorage(policy.storages[name]!));
  return open;
}

/**
 * Gathers everything the planner looks at: each storage's catalog for the selected targets
 * (listing only), the live locks (stale ones dropped: apply takes them over), and each target's
 * units from its engine. A failing engine or storage becomes an error in the state, not a throw,
 * so one unreachable server does not stop the other targets.
 */
export async function observe(policy: Policy, targets: Target[], storages: OpenStorages, log: (line: string) => void, selfHolder?: string): Promise<ObservedState> {
  const observedStorages: ObservedStorage[] = [];
  for (const [name, storage] of storages) {
    const users = targets.filter((t) => t.storage.includes(name)).map((t) => t.name);
    const o = await observeStorage(storage, users);
    const realNow = new Date();
    // Our own locks (an apply locks before it observes) and stale ones do not block the plan.
    o.locks = o.locks.filter((l) => l.holder !== selfHolder && !isStale(l, realNow));
    observedStorages.push(o);
  }
  for (const target of targets) {
    const catalog = engineCatalog(target);
    if (catalog) observedStorages.push(await observeEngineCatalog(target, catalog, log));
  }
  const observedTargets: ObservedTarget[] = [];
  for (const target of targets) observedTargets.push(await observeTarget(target, observedStorages, log));
  return { storages: observedStorages, targets: observedTargets };
}

/** An engine's own catalog as a storage the planner can read (Elasticsearch snapshots). */
export async function observeEngineCatalog(target: Target, catalog: string, log: (line: string) => void): Promise<ObservedStorage> {
  try {
    const provider = await loadProvider(target.engine);
    if (!provider.listCatalog) throw new Error(`engine ${target.engine} has no catalog of its own`);
    const { backups, warnings } = await provider.listCatalog(target, catalog, { log });
    return { name: catalog, backups, incomplete: [], locks: [], warnings };
  } catch (err) {
    return { name: catalog, backups: [], incomplete: [], locks: [], error: `target ${target.name}: ${redact((err as Error).message)}` };
  }
}

async function observeTarget(target: Target, storages: ObservedStorage[], log: (line: string) => void): Promise<ObservedTarget> {
  try {
    const provider = await loadProvider(target.engine);
    const units = [...(await provider.discoverUnits(target, { log }))].sort();
    const observed: ObservedTarget = { name: target.name, units };
    if (provider.observeResources) {
      try {
        observed.resources = await provider.observeResources(target, desiredResources(target, units), { log });
      } catch (err) {
        observed.resourcesError = redact((err as Error).message);
      }
    }
    return observed;
  } catch (err) {
    // Fall back to the units the catalog knows, so their backups are still planned (and fail
    // visibly at apply) and retention still sees them.
    const known = new Set(storages.flatMap((s) => s.backups.filter((b) => b.target === target.name).map((b) => b.unit)));
    return { name: target.name, units: [...known].sort(), error: redact((err as Error).message) };
  }
}
