import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams, type StdioNull, type StdioPipe } from 'node:child_process';
import type { Readable, Stream, Writable } from 'node:stream';
import { UserError } from '../../core/diagnostics.js';

/** A tool started with its stderr kept (the tail, for the error message) and its exit awaited. */
export interface RunningTool {
  child: ChildProcessWithoutNullStreams;
  /** Resolves on exit 0; rejects with the tool's last stderr lines otherwise. */
  exited: Promise<void>;
}

const STDERR_KEEP = 4096;

export function startTool(bin: string, args: string[], env: NodeJS.ProcessEnv, what: string, log?: (line: string) => void): RunningTool {
  const started = startProcess(bin, args, { env, what, log, stdin: 'pipe', stdout: 'pipe' });
  return { child: started.child as ChildProcessWithoutNullStreams, exited: started.exited };
}

export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  /** Names the process in errors: `target store: pg_dump of database "store" on host:5432`. */
  what: string;
  /** Every stderr line, prefixed with `what` (pg_restore's notices). */
  log?: (line: string) => void;
  /** Every stderr line as it comes, unprefixed (pg_dump --verbose progress). */
  onLine?: (line: string) => void;
  /** Picks the stderr lines an error message quotes (default: the last three). */
  explain?: (lines: string[]) => string[];
  stdin?: StdioPipe | StdioNull;
  /** `pipe`, `ignore`, or a stream with a descriptor (another process's stdin) to write into directly. */
  stdout?: StdioPipe | StdioNull | Stream;
  /** Its own process group, so that `kill` reaches every process it forks (pg_dump -j workers). */
  group?: boolean;
}

export interface StartedProcess {
  child: ChildProcess;
  stdout: Readable | null;
  stdin: Writable | null;
  /** Resolves on exit 0; rejects with a UserError quoting stderr otherwise. */
  exited: Promise<void>;
  /** Whether it has exited. */
  readonly running: boolean;
  /** Signals it (and its group); a no-op once it exited. */
  kill(signal?: NodeJS.Signals): void;
  /** Sends SIGTERM, then SIGKILL after `graceMs`, and waits for the exit. */
  stop(graceMs?: number): Promise<void>;
}

const LINES_KEEP = 50;

export function startProcess(bin: string, args: string[], opts: ProcessOptions): StartedProcess {
  const child = spawn(bin, args, { env: opts.env ?? process.env, stdio: [opts.stdin ?? 'pipe', opts.stdout ?? 'pipe', 'pipe'], detached: opts.group === true });
  let tail = '';
  let lines: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    tail = (tail + d).slice(-STDERR_KEEP);
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 2 * LINES_KEEP) lines = lines.slice(-LINES_KEEP);
      opts.log?.(`${opts.what}: ${line}`);
      opts.onLine?.(line);
    }
  });
  let running = true;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException }>((resolve) => {
    child.on('error', (error: NodeJS.ErrnoException) => {
      running = false;
      resolve({ error });
    });
    child.on('close', (code, signal) => {
      running = false;
      if (partial) {
        lines.push(partial);
        opts.onLine?.(partial);
        partial = '';
      }
      resolve({ code, signal });
    });
  });
  const exited = closed.then((r) => {
    if ('error' in r) {
      throw new UserError(r.error.code === 'ENOENT' ? `${opts.what}: ${bin} is not installed` : `${opts.what}: ${bin} could not start: ${r.error.message}`);
    }
    if (r.code === 0) return;
    const quoted = opts.explain ? opts.explain(lines.slice(-LINES_KEEP)) : tail.trim().split('\n').slice(-3);
    const detail = quoted.join(' | ');
    throw new UserError(`${opts.what} failed (${r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`})${detail ? `: ${detail}` : ''}`);
  });
  exited.catch(() => undefined);
  const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!running || child.pid === undefined) return;
    try {
      if (opts.group) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // already gone
    }
  };
  return {
    child,
    stdout: child.stdout,
    stdin: child.stdin,
    exited,
    get running() {
      return running;
    },
    kill,
    async stop(graceMs = 5000) {
      if (!running) return;
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
