import { execFile, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../../core/diagnostics.js';
import type { InfluxSettings } from './settings.js';

const exec = promisify(execFile);

const INSTALL = 'install the Debian package influxdb (apt-get install influxdb), or set influxd_path to an influxd 1.5 or newer';

/** `influxd version` → `1.6.7~rc0`; a missing or broken binary is a clear error. */
export async function influxdVersion(s: InfluxSettings, target: string): Promise<string> {
  try {
    const { stdout } = await exec(s.influxdPath, ['version'], { timeout: 10_000 });
    return /InfluxDB v(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES') {
      throw new UserError(`target ${target}: ${s.influxdPath === 'influxd' ? 'influxd is not installed (not found on PATH)' : `${s.influxdPath} (from influxd_path) cannot be run`}: ${INSTALL}`);
    }
    throw new UserError(`target ${target}: ${s.influxdPath} version failed: ${e.message}: ${INSTALL}`);
  }
}

/** A TCP connect to the RPC service, bounded: an unreachable port fails in seconds, not after influxd's retries. */
export function checkRpcReachable(s: InfluxSettings, target: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: s.rpcHost, port: s.rpcPort });
    const fail = (why: string) => {
      socket.destroy();
      reject(new UserError(`target ${target}: cannot reach influxd's backup RPC service at ${s.rpc}: ${why} (is influxd running with bind-address = "${s.rpc}"?)`));
    };
    socket.setTimeout(timeoutMs, () => fail(`no connection within ${timeoutMs / 1000}s`));
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ENOTFOUND' ? `host "${s.rpcHost}" not found` : err.message));
    socket.once('connect', () => {
      socket.end();
      socket.destroy();
      resolve();
    });
  });
}

/** Bytes under a folder (flat: influxd's portable backups have no subfolders). */
export function folderBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const st = statSync(path.join(dir, name));
    if (st.isFile()) {
      files += 1;
      bytes += st.size;
    }
  }
  return { files, bytes };
}

export interface RunOptions {
  what: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Kill influxd when neither its output nor this folder changed for `stallMs`. */
  watchDir?: string;
  stallMs?: number;
}

/**
 * Runs `influxd backup|restore`. influxd retries a refused or lost RPC connection for minutes
 * ("Download shard 0 failed dial tcp …: connection refused. Waiting 2s and retrying (N)"): the
 * third such line kills it with a clear error naming the address. A run that makes no progress for
 * `stallMs` (a port that accepts and never answers) is killed too.
 */
export function runInfluxd(s: InfluxSettings, args: string[], target: string, opts: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(s.influxdPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let failure: UserError | undefined;
    let lastProgress = Date.now();
    let lastSize = -1;
    const kill = (err: UserError) => {
      failure ??= err;
      child.kill('SIGKILL');
    };
    const onText = (d: string) => {
      output = (output + d).slice(-8192);
      lastProgress = Date.now();
      for (const line of d.split('\n').filter(Boolean)) {
        opts.log?.(`${opts.what}: ${line.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '')}`);
        // A blip may pass: the third failed attempt in a row (about 4s) is the end of it.
        const retry = /Waiting .* and retrying \((\d+)\)/.exec(line);
        if (retry && Number(retry[1]) >= 2) {
          const why = /connection refused|connection reset by peer|i\/o timeout|no route to host|EOF/.exec(line)?.[0] ?? 'connection failed';
          kill(new UserError(`target ${target}: ${opts.what}: cannot reach influxd's backup RPC service at ${s.rpc}: ${why}`));
        }
      }
    };
    child.stdout.setEncoding('utf8').on('data', onText);
    child.stderr.setEncoding('utf8').on('data', onText);
    const stallMs = opts.stallMs ?? 120_000;
    const timer = setInterval(() => {
      if (opts.watchDir) {
        try {
          const size = folderBytes(opts.watchDir).bytes;
          if (size !== lastSize) {
            lastSize = size;
            lastProgress = Date.now();
          }
        } catch {
          // not created yet
        }
      }
      if (Date.now() - lastProgress > stallMs) kill(new UserError(`target ${target}: ${opts.what}: no progress for ${Math.round(stallMs / 1000)}s talking to ${s.rpc}: stopped`));
    }, 1000);
    const onAbort = () => kill(new UserError(`target ${target}: ${opts.what}: cancelled`));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err: NodeJS.ErrnoException) => {
      failure ??= new UserError(
        err.code === 'ENOENT' ? `target ${target}: ${s.influxdPath} is not installed: ${INSTALL}` : `target ${target}: ${opts.what}: ${s.influxdPath} could not start: ${err.message}`,
      );
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (failure) return reject(failure);
      if (code === 0) return resolve(output);
      const tail = output
        .trim()
        .split('\n')
        .map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, ''))
        .slice(-2)
        .join(' | ');
      reject(new UserError(`target ${target}: ${opts.what} failed (${signal ? `killed by ${signal}` : `exit code ${code}`})${tail ? `: ${tail}` : ''}`));
    });
  });
}
