import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/diagnostics.js';

/**
 * Temporary folders for directory-format dumps and restores. They can be as large as the
 * database, so none may outlive its backup: each is removed when its work ends (success, failure,
 * abort), when bkp is interrupted (SIGINT, SIGTERM, SIGHUP: removed, then the signal is re-raised so
 * bkp still dies of it), and, after a `kill -9` or a crash, by the next bkp that stages a dump in
 * the same folder: the name carries host and pid, and a folder whose process is gone is removed.
 */
export interface WorkDir {
  path: string;
  /** Removes the folder (once); after `stop` of whatever still writes into it. */
  remove(): Promise<void>;
}

const PREFIX = 'bkp-pg-';
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** What must happen synchronously if bkp is interrupted: kill the tools, remove the folders. */
const onInterrupt = new Map<string, () => void>();
let installed = false;

function interrupted(signal: NodeJS.Signals): void {
  for (const fn of onInterrupt.values()) {
    try {
      fn();
    } catch {
      // best effort: the process is going away
    }
  }
  onInterrupt.clear();
  uninstall();
  // Die of the signal, as without this handler, unless someone else handles it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function onExit(): void {
  for (const fn of onInterrupt.values()) fn();
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, interrupted);
  process.on('exit', onExit);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, interrupted);
  process.off('exit', onExit);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes folders that bkp processes of this host left behind when they were killed. */
async function sweepStale(parent: string): Promise<void> {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  const re = new RegExp(`^${PREFIX}${host.replace(/\./g, '\\.')}-(\\d+)-`);
  for (const name of names) {
    const m = re.exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) await rm(path.join(parent, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Creates a private folder in `parent` (`temp_dir`). `kill` runs on interruption before the
 * folder is removed: it must stop, synchronously, whatever writes into the folder.
 */
export async function createWorkDir(parent: string, target: string, kill: () => void = () => undefined): Promise<WorkDir> {
  await sweepStale(parent);
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  let dir: string;
  try {
    await mkdir(parent, { recursive: true });
    dir = await mkdtemp(path.join(parent, `${PREFIX}${host}-${process.pid}-`));
  } catch (err) {
    throw new UserError(`target ${target}: cannot create a temporary folder in ${parent} (temp_dir): ${(err as Error).message}`);
  }
  install();
  onInterrupt.set(dir, () => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  });
  let removed: Promise<void> | undefined;
  return {
    path: dir,
    remove() {
      removed ??= (async () => {
        onInterrupt.delete(dir);
        if (onInterrupt.size === 0) uninstall();
        await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      })();
      return removed;
    },
  };
}

/** Sets what must be killed on interruption once it is known (the tool starts after the folder). */
export function setKill(dir: WorkDir, kill: () => void): void {
  if (!onInterrupt.has(dir.path)) return;
  onInterrupt.set(dir.path, () => {
    kill();
    rmSync(dir.path, { recursive: true, force: true });
  });
}
