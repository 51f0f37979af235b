import type { BackupRecord, IncompleteArtifact, LockInfo, ObservedStorage } from '../planner/types.js';
import { LOCKS_PREFIX, parseBackupName, targetPrefix, type ParsedBackupName } from './catalog-keys.js';
import { PARTIAL_MARKER, type Storage, type StoredObject } from './types.js';
import pLimit from 'p-limit';
import { redact } from '../core/secrets.js';

/**
 * Reads what a storage holds for the given targets: good backups (artifact + manifest),
 * incomplete artifacts (temp files, artifacts without manifest, manifests without artifact) and
 * locks. Only names bkp writes are considered; anything else in the folder is left alone.
 */
export async function observeStorage(storage: Storage, targets: string[]): Promise<ObservedStorage> {
  const observed: ObservedStorage = { name: storage.name, backups: [], incomplete: [], locks: [] };
  try {
    // Targets are listed a few at a time (I/O overlaps), then classified in policy order, so the
    // result is the same whatever order the listings finish in.
    const limit = pLimit(LIST_CONCURRENCY);
    const listings = await Promise.all(targets.map((t) => limit(() => storage.list(targetPrefix(t)))));
    targets.forEach((t, i) => {
      const part: ObservedStorage = { name: storage.name, backups: [], incomplete: [], locks: [] };
      classify(storage.name, t, listings[i]!, part);
      // Sorted per target: n·log(per target) instead of n·log(all), at 365,000 backups it shows.
      part.backups.sort(byTimeThenKey);
      part.incomplete.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      for (const b of part.backups) observed.backups.push(b);
      for (const x of part.incomplete) observed.incomplete.push(x);
    });
    observed.locks = await readLocks(storage);
  } catch (err) {
    observed.error = redact(`storage "${storage.name}" (${storage.describe()}): ${(err as Error).message}`);
  }
  return observed;
}

const LIST_CONCURRENCY = 8;

/** Oldest first. Plain comparisons: ISO times and keys are ASCII, and localeCompare is slow at this scale. */
function byTimeThenKey(a: BackupRecord, b: BackupRecord): number {
  if (a.started_at !== b.started_at) return a.started_at < b.started_at ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function classify(storageName: string, target: string, objects: StoredObject[], out: ObservedStorage): void {
  // Group by "<unit>/<stamp>-<id>" so an artifact meets its manifest.
  const groups = new Map<string, { artifact?: StoredObject; parsed?: ParsedBackupName; manifest?: StoredObject; unit: string }>();
  for (const obj of objects) {
    const parts = obj.key.split('/');
    if (parts.length !== 3 || parts[0] !== target) continue;
    const unit = parts[1]!;
    const name = parts[2]!;
    if (name.includes(PARTIAL_MARKER)) {
      out.incomplete.push(incomplete(storageName, target, unit, obj, 'temporary file of an interrupted write'));
      continue;
    }
    const parsed = parseBackupName(name);
    if (!parsed) continue;
    const group = `${unit}/${parsed.stamp}-${parsed.id}`;
    const entry = groups.get(group) ?? { unit };
    if (parsed.isManifest) entry.manifest = obj;
    else {
      entry.artifact = obj;
      entry.parsed = parsed;
    }
    groups.set(group, entry);
  }
  for (const { artifact, parsed, manifest, unit } of groups.values()) {
    if (artifact && parsed && manifest) {
      out.backups.push({
        storage: storageName,
        target,
        unit,
        id: parsed.id,
        kind: parsed.kind,
        started_at: parsed.startedAtIso,
        key: artifact.key,
        manifestKey: manifest.key,
        size: artifact.size,
      });
    } else if (artifact) {
      out.incomplete.push(incomplete(storageName, target, unit, artifact, 'artifact without manifest'));
    } else if (manifest) {
      out.incomplete.push(incomplete(storageName, target, unit, manifest, 'manifest without artifact'));
    }
  }
}

function incomplete(storage: string, target: string, unit: string, obj: StoredObject, why: string): IncompleteArtifact {
  return {
    storage,
    key: obj.key,
    target,
    unit,
    why,
    size: obj.size,
    modified_at: obj.modifiedAt?.toISOString(),
  };
}

async function readLocks(storage: Storage): Promise<LockInfo[]> {
  const locks: LockInfo[] = [];
  for (const obj of await storage.list(LOCKS_PREFIX)) {
    if (!obj.key.endsWith('.json') || obj.key.includes(PARTIAL_MARKER)) continue;
    try {
      const data = JSON.parse(await storage.getText(obj.key)) as Omit<LockInfo, 'storage' | 'id'>;
      const id = obj.key.slice(LOCKS_PREFIX.length, -'.json'.length);
      locks.push({ ...data, id, storage: storage.name });
    } catch {
      // Released between list and read, or half-written by a crash: the lock code handles it when acquiring.
    }
  }
  return locks;
}
