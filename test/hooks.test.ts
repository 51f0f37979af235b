import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDuration, runHooks } from '../src/apply/hooks.js';
import { UserError } from '../src/core/diagnostics.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'bkp-hooks-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function options(extra: Partial<Parameters<typeof runHooks>[2]> = {}): { lines: string[]; opts: Parameters<typeof runHooks>[2] } {
  const lines: string[] = [];
  return { lines, opts: { timeoutMs: 10_000, cwd: tmp, target: 'app', log: (l) => lines.push(l), ...extra } };
}

/** Running, as opposed to gone or a zombie (a killed orphan waits for pid 1 to reap it). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Signals take a moment to land: poll briefly rather than racing the kernel. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (!running(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('runHooks', () => {
  it('runs commands one after the other, in the given folder, forwarding their output', async () => {
    const { lines, opts } = options();
    await runHooks('before', ['echo one >> order.txt; sleep 0.2; echo first', 'echo two >> order.txt; echo oops >&2', 'pwd'], opts);
    expect(await readFile(path.join(tmp, 'order.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(lines).toEqual(['[hook before] first', '[hook before] oops', `[hook before] ${tmp}`]);
  });

  it('gives each command BKP_TARGET, BKP_PHASE and the base environment', async () => {
    const { lines, opts } = options({ env: { PATH: process.env.PATH, CUSTOM: 'yes' } });
    await runHooks('after', ['echo "$BKP_TARGET $BKP_PHASE $CUSTOM ${HOME:-nohome}"'], opts);
    expect(lines).toEqual(['[hook after] app after yes nohome']);
  });

  it('stops at the first failure, with the exit code and the last stderr line', async () => {
    const { lines, opts } = options();
    const run = runHooks('before', ['echo starting; echo "warming up" >&2; echo "brainwave: services still running" >&2; exit 3', 'echo never'], opts);
    await expect(run).rejects.toBeInstanceOf(UserError);
    await expect(run).rejects.toThrow('target app: before hook "echo starting; echo "warming up" >&2; echo "brainwave: services still running" >&2; exit 3" exited with code 3: brainwave: services still running');
    expect(lines).not.toContain('[hook before] never');
    // Without stderr the message just ends.
    await expect(runHooks('after', ['exit 1'], options().opts)).rejects.toThrow(/^target app: after hook "exit 1" exited with code 1$/);
  });

  it('kills the whole process group on timeout', async () => {
    const pidFile = path.join(tmp, 'sleep.pid');
    const { opts } = options({ timeoutMs: 500 });
    const started = Date.now();
    // The shell forks `sleep` (not exec: a command follows), so sleep is a grandchild of ours.
    const run = runHooks('before', [`sleep 100 & echo $! > ${pidFile}; wait; echo done`], opts);
    await expect(run).rejects.toThrow(/^target app: before hook ".*" timed out after 500ms$/);
    expect(Date.now() - started).toBeLessThan(5_000); // SIGTERM was enough, no 5 s SIGKILL wait
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    expect(await gone(pid)).toBe(true);
  });

  it('escalates to SIGKILL when a hook ignores SIGTERM', async () => {
    const pidFile = path.join(tmp, 'stubborn.pid');
    const { opts } = options({ timeoutMs: 300 });
    const started = Date.now();
    const run = runHooks('after', [`trap '' TERM; sleep 100 & echo $! > ${pidFile}; wait; wait; wait`], opts);
    await expect(run).rejects.toThrow('timed out after 300ms');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(5_000);
    expect(elapsed).toBeLessThan(15_000);
    expect(await gone(Number(await readFile(pidFile, 'utf8')))).toBe(true);
  }, 30_000);

  it('does not wait for a background service the hook started', async () => {
    const pidFile = path.join(tmp, 'daemon.pid');
    const { opts } = options();
    const started = Date.now();
    // `brainwave start` style: leaves a process running that still holds our stdout.
    await runHooks('after', [`sleep 30 & echo $! > ${pidFile}; echo started`], opts);
    expect(Date.now() - started).toBeLessThan(5_000);
    process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
  });

  it('says when a hook cannot start', async () => {
    await expect(runHooks('before', ['true'], options({ cwd: path.join(tmp, 'missing') }).opts)).rejects.toThrow(
      `target app: before hook "true" could not start in ${path.join(tmp, 'missing')}`,
    );
  });

  it('formats durations the way timeouts are written', () => {
    expect(formatDuration(600_000)).toBe('10m');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(500)).toBe('500ms');
  });
});
