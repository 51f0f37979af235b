import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { UserError } from '../../core/diagnostics.js';

/** A tool started with its stderr kept (the tail, for the error message) and its exit awaited. */
export interface RunningTool {
  child: ChildProcessWithoutNullStreams;
  /** Resolves on exit 0; rejects with the tool's last stderr lines otherwise. */
  exited: Promise<void>;
}

const STDERR_KEEP = 4096;

export function startTool(bin: string, args: string[], env: NodeJS.ProcessEnv, what: string, log?: (line: string) => void): RunningTool {
  const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_KEEP);
    if (log) for (const line of d.split('\n').filter(Boolean)) log(`${what}: ${line}`);
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(new UserError(err.code === 'ENOENT' ? `${what}: ${bin} is not installed` : `${what}: ${bin} could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      reject(new UserError(`${what} failed (${signal ? `killed by ${signal}` : `exit code ${code}`})${tail ? `: ${tail}` : ''}`));
    });
  });
  exited.catch(() => undefined);
  return { child, exited };
}
