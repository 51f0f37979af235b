import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/diagnostics.js';
import { redact } from '../../core/secrets.js';

export type MongoToolName = 'mongodump' | 'mongorestore';

/** A MongoDB Database Tools binary and its version. */
export interface MongoTool {
  name: MongoToolName;
  path: string;
  version: string;
}

const INSTALL =
  'install the MongoDB Database Tools (mongodump and mongorestore, version 100.3 or newer): https://www.mongodb.com/docs/database-tools/installation/ ' +
  '(Debian/Ubuntu: the mongodb-database-tools package from MongoDB\'s apt repository, or the .deb/.tgz from https://www.mongodb.com/try/download/database-tools)';

/** `--config` (the connection string in a file rather than on the command line) came with 100.3.0. */
const MIN_VERSION = [100, 3, 0];

function olderThan(version: string, min: number[]): boolean {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < min.length; i++) {
    const v = parts[i] ?? 0;
    if (Number.isNaN(v)) return false;
    if (v !== min[i]) return v < min[i]!;
  }
  return false;
}

/** Where a tool's path came from, for messages: the default (PATH) or a policy field. */
export interface ToolChoice {
  bin: string;
  /** `from mongodump_path`, `beside mongodump_path`; undefined: looked up on PATH. */
  source?: string;
  /** The field that would set it. */
  setting: string;
}

/** Checks that the tool runs and is recent enough, before anything connects or writes. */
export function findTool(name: MongoToolName, choice: ToolChoice, target: string): Promise<MongoTool> {
  const { bin, source, setting } = choice;
  const configured = source !== undefined;
  return new Promise((resolve, reject) => {
    execFile(bin, ['--version'], { timeout: 15_000, encoding: 'utf8' }, (err, stdout) => {
      if (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT' || e.code === 'EACCES') {
          return reject(new UserError(`target ${target}: ${configured ? `${bin} (${source}) cannot be run` : `${name} is not installed (not found on PATH)`}: ${INSTALL}${configured ? '' : `, or set ${setting}`}`));
        }
        return reject(new UserError(`target ${target}: ${bin} --version failed: ${e.message.split('\n')[0]}: ${INSTALL}`));
      }
      // `mongodump version: 100.9.4`; the legacy tools (MongoDB 4.2 and older) said `r4.2.8`.
      const m = /version:?\s*r?(\d+\.\d+(?:\.\d+)?)/.exec(stdout);
      const version = m?.[1] ?? (stdout.trim().split('\n')[0] ?? 'unknown');
      if (m && olderThan(version, MIN_VERSION)) {
        return reject(new UserError(`target ${target}: ${name} ${version} (${bin}) is too old: bkp passes the connection string in a --config file, which needs 100.3 or newer: ${INSTALL}`));
      }
      resolve({ name, path: bin, version });
    });
  });
}

/** A running tool: its exit awaited, its stderr kept (the tail, for the error message). */
export interface RunningTool {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with stderr (its last 64 KiB, where the tools print their summary) on exit 0; rejects with its last lines otherwise. */
  exited: Promise<string>;
}

const STDERR_KEEP = 64 * 1024;

/**
 * Starts a tool with the connection string in a `--config` YAML file: on the command line the
 * password would show in `ps` to every user of the host. The file is private to this user
 * (mode 0600, in a 0700 folder) and removed as soon as the tool exits, however it exits.
 */
export function runTool(tool: MongoTool, uri: string, args: string[], what: string, opts: { log?: (line: string) => void; logPrefix?: string; signal?: AbortSignal } = {}): RunningTool {
  const dir = mkdtempSync(path.join(tmpdir(), 'bkp-mongo-'));
  const config = path.join(dir, 'config.yaml');
  let child: ChildProcessWithoutNullStreams;
  try {
    // A JSON string is a YAML double-quoted scalar: every character of the URI survives.
    writeFileSync(config, `uri: ${JSON.stringify(uri)}\n`, { mode: 0o600 });
    child = spawn(tool.path, [`--config=${config}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let stderr = '';
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_KEEP);
    if (!opts.log) return;
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) opts.log(redact(`${opts.logPrefix ?? what}: ${stripTimestamp(line)}`));
  });
  const onAbort = () => child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const exited = new Promise<string>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      cleanup();
      reject(new UserError(err.code === 'ENOENT' ? `${what}: ${tool.path} is not installed: ${INSTALL}` : `${what}: ${tool.path} could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      cleanup();
      opts.signal?.removeEventListener('abort', onAbort);
      if (partial && opts.log) opts.log(redact(`${opts.logPrefix ?? what}: ${stripTimestamp(partial)}`));
      if (code === 0) return resolve(stderr);
      const tail = stderr
        .trim()
        .split('\n')
        .map(stripTimestamp)
        .filter(Boolean)
        .slice(-3)
        .join(' | ');
      reject(new UserError(redact(`${what} failed (${signal ? `killed by ${signal}` : `exit code ${code}`})${tail ? `: ${tail}` : ''}`)));
    });
  });
  exited.catch(() => undefined);
  return { child, exited };
}

/** The tools start every log line with an ISO timestamp and a tab: noise in bkp's messages. */
function stripTimestamp(line: string): string {
  return line.replace(/^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d{2}:?\d{2})\s+/, '').trim();
}
