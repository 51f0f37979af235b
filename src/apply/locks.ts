import { hostname } from 'node:os';
import type { LockInfo } from '../planner/types.js';
import { lockKey } from '../storage/catalog-keys.js';
import { AlreadyExistsError, type Storage } from '../storage/types.js';
import { UserError } from '../core/diagnostics.js';

/** A lock lives this long without a refresh; a crashed holder blocks others at most this long. */
export const LOCK_TTL_MS = 5 * 60_000;
const REFRESH_MS = 60_000;

type LockBody = Omit<LockInfo, 'id' | 'storage'>;

/** Is the holder of a lock gone? Expired, or on this host with a pid that no longer runs. */
export function isStale(lock: Pick<LockInfo, 'host' | 'pid' | 'expires_at'>, realNow: Date): boolean {
  if (new Date(lock.expires_at).getTime() < realNow.getTime()) return true;
  if (lock.host === hostname() && !pidAlive(lock.pid)) return true;
  return false;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeHolder(l: LockBody, id: string, storage: string): string {
  return `target ${id} is locked in storage ${storage} by ${l.holder} (host ${l.host}, pid ${l.pid}) since ${l.created_at}, until ${l.expires_at}: another bkp apply is running; wait for it, or if that process is gone run \`bkp unlock ${id}\``;
}

/** Held locks of one apply run; refreshed in the background, released at the end. */
export class LockSet {
  private held: { storage: Storage; target: string; body: LockBody }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly holder: string,
    private readonly warn: (message: string) => void,
  ) {}

  /**
   * Takes `locks/<target>.json` in each storage, exclusively, in a fixed order (no deadlock
   * between two applies). A stale lock is taken over with a warning; a live one fails fast,
   * naming its holder, after releasing what was already taken.
   */
  async acquire(pairs: { storage: Storage; target: string; units: string[] }[]): Promise<void> {
    const sorted = [...pairs].sort((a, b) => `${a.storage.name}/${a.target}`.localeCompare(`${b.storage.name}/${b.target}`));
    try {
      for (const p of sorted) await this.acquireOne(p.storage, p.target, p.units);
    } catch (err) {
      await this.release();
      throw err;
    }
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  private async acquireOne(storage: Storage, target: string, units: string[]): Promise<void> {
    const key = lockKey(target);
    const realNow = new Date();
    const body: LockBody = {
      holder: this.holder,
      host: hostname(),
      pid: process.pid,
      created_at: realNow.toISOString(),
      expires_at: new Date(realNow.getTime() + LOCK_TTL_MS).toISOString(),
      units,
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await storage.putExclusive(key, JSON.stringify(body, null, 2));
        this.held.push({ storage, target, body });
        return;
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        const current = await readLock(storage, key);
        if (current && !isStale(current, new Date())) throw new UserError(describeHolder(current, target, storage.name));
        this.warn(`taking over a stale lock of target ${target} in storage ${storage.name}${current ? ` (held by ${current.holder}, host ${current.host}, pid ${current.pid}, expired ${current.expires_at})` : ''}`);
        await storage.delete(key);
      }
    }
    throw new UserError(`could not lock target ${target} in storage ${storage.name}: another apply took it at the same moment`);
  }

  private async refresh(): Promise<void> {
    for (const h of this.held) {
      h.body.expires_at = new Date(Date.now() + LOCK_TTL_MS).toISOString();
      try {
        await h.storage.putText(lockKey(h.target), JSON.stringify(h.body, null, 2));
      } catch (err) {
        this.warn(`could not refresh the lock of ${h.target} in ${h.storage.name}: ${(err as Error).message}`);
      }
    }
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const h of this.held.reverse()) {
      try {
        const current = await readLock(h.storage, lockKey(h.target));
        if (current?.holder === this.holder) await h.storage.delete(lockKey(h.target));
      } catch (err) {
        this.warn(`could not release the lock of ${h.target} in ${h.storage.name}: ${(err as Error).message}`);
      }
    }
    this.held = [];
  }
}

/**
 * Locks every storage of the given targets for one run, before anything is observed (as
 * Terraform locks state before planning), so a second apply fails fast naming the holder.
 */
export async function lockTargets(
  targets: { name: string; storage: string[] }[],
  storages: Map<string, Storage>,
  holder: string,
  warn: (message: string) => void,
): Promise<LockSet> {
  const set = new LockSet(holder, warn);
  await set.acquire(targets.flatMap((t) => t.storage.map((s) => ({ storage: storages.get(s)!, target: t.name, units: [t.name] }))));
  return set;
}

async function readLock(storage: Storage, key: string): Promise<LockBody | undefined> {
  try {
    return JSON.parse(await storage.getText(key)) as LockBody;
  } catch {
    return undefined;
  }
}

/** `bkp unlock ID`: removes the lock of target ID in every given storage; says what it removed. */
export async function unlock(storages: Storage[], id: string): Promise<string[]> {
  const removed: string[] = [];
  for (const s of storages) {
    const current = await readLock(s, lockKey(id));
    if (!current) continue;
    await s.delete(lockKey(id));
    removed.push(`removed lock ${id} in storage ${s.name} (held by ${current.holder}, host ${current.host}, pid ${current.pid}, since ${current.created_at})`);
  }
  return removed;
}
