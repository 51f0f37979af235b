import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { UserError } from '../core/diagnostics.js';

export type HookPhase = 'before' | 'after' | 'after_restore';

export interface HookOptions {
  /** Per command. */
  timeoutMs: number;
  cwd: string;
  /** Target name, for messages and `BKP_TARGET`. */
  target: string;
  /** Base environment of the commands (default: this process's); `BKP_TARGET` and `BKP_PHASE` are added. */
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** After SIGTERM, how long a hook's processes get to exit before SIGKILL. */
const KILL_GRACE_MS = 5_000;
/**
 * After the shell exits, how long to wait for its output pipes to close. A hook that starts a
 * background service (`brainwave start &`) leaves it holding the pipes: we must not wait for it.
 */
const PIPE_GRACE_MS = 1_000;

/**
 * Runs a target's hook commands one after the other (DESIGN §6: "with before/after hooks"), e.g.
 * `brainwave stop` before the volumes are archived. The first failure stops the sequence.
 */
export async function runHooks(phase: HookPhase, commands: string[], opts: HookOptions): Promise<void> {
  for (const command of commands) {
    await runOne(phase, command, opts);
  }
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  lastStderr: string;
}

async function runOne(phase: HookPhase, command: string, opts: HookOptions): Promise<void> {
  const what = `target ${opts.target}: ${phase} hook "${command}"`;
  const child = spawn('/bin/sh', ['-c', command], {
    cwd: opts.cwd,
    env: { ...(opts.env ?? process.env), BKP_TARGET: opts.target, BKP_PHASE: phase },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a timeout kills the whole tree (sh and what it started), not just sh.
    detached: true,
  });
  const outcome = await watch(child, phase, opts).catch((err: unknown) => {
    // spawn() reports a missing cwd as "spawn /bin/sh ENOENT": say which folder instead.
    const msg = err instanceof Error ? err.message : String(err);
    throw new UserError(`${what} could not start in ${opts.cwd}: ${msg}`);
  });
  if (outcome.timedOut) throw new UserError(`${what} timed out after ${formatDuration(opts.timeoutMs)}`);
  const tail = outcome.lastStderr ? `: ${outcome.lastStderr}` : '';
  if (outcome.signal) throw new UserError(`${what} was killed by ${outcome.signal}${tail}`);
  if (outcome.code !== 0) throw new UserError(`${what} exited with code ${outcome.code}${tail}`);
}

/** Forwards output line by line, enforces the timeout, resolves once the command is over. */
function watch(child: ChildProcess, phase: HookPhase, opts: HookOptions): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    let lastStderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const prefix = `[hook ${phase}] `;
    const forward = (stream: Readable | null, isStderr: boolean): void => {
      if (!stream) return;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        opts.log(prefix + line);
        if (isStderr && line.trim() !== '') lastStderr = line.trim();
      });
    };
    forward(child.stdout, false);
    forward(child.stderr, true);

    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), KILL_GRACE_MS);
    }, opts.timeoutMs);

    child.once('error', (err) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // On a timeout, make sure nothing of the group outlives the hook (a child ignoring SIGTERM).
      if (timedOut) {
        clearTimeout(killTimer);
        signalGroup(child, 'SIGKILL');
      }
      const finish = (): void => resolve({ code, signal, timedOut, lastStderr });
      const pipesOpen = [child.stdout, child.stderr].filter((s): s is Readable => s !== null && !s.closed);
      if (pipesOpen.length === 0) return finish();
      const grace = setTimeout(() => {
        for (const s of pipesOpen) s.destroy();
        finish();
      }, PIPE_GRACE_MS);
      // 'close' comes after the last output line has been read: wait for it, within the grace.
      child.once('close', () => {
        clearTimeout(grace);
        finish();
      });
    });
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** `600000` → `10m`, `90000` → `1m30s`, `500` → `500ms`: the way users write timeouts. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].join('');
}
