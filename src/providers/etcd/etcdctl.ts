import { execFile } from 'node:child_process';
import { UserError } from '../../core/diagnostics.js';
import { connectionArgs, etcdctlEnv, type EtcdSettings } from './settings.js';

/** Bounded waits: an endpoint that does not answer fails the preflight in seconds, not hours. */
export const DIAL_TIMEOUT = '5s';
export const COMMAND_TIMEOUT = '15s';
/** `endpoint status` is answered at once by a live member: a short bound for the preflight. */
export const STATUS_TIMEOUT = '5s';
/** A snapshot of a large keyspace takes a while; etcdctl 3.4 applies --command-timeout to it too. */
export const SNAPSHOT_TIMEOUT = '1h';

const INSTALL_HINT = 'install the etcd client (Debian/Ubuntu: apt-get install etcd-client)';

/** etcdctl failed; `detail` is its last stderr lines, for callers that rephrase the error. */
export class EtcdctlError extends UserError {
  readonly detail: string;
  constructor(message: string, detail: string) {
    super(message);
    this.detail = detail;
  }
}

export interface EtcdctlOutput {
  stdout: string;
  stderr: string;
}

/** The last meaningful stderr lines of etcdctl (it logs JSON lines; keep their `msg`/`error`). */
function stderrTail(stderr: string): string {
  const lines = stderr
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      if (!l.startsWith('{')) return l;
      try {
        const j = JSON.parse(l) as { msg?: string; error?: string };
        return [j.msg, j.error].filter(Boolean).join(': ');
      } catch {
        return l;
      }
    });
  return lines.slice(-2).join(' | ');
}

/**
 * Runs `etcdctl ARGS` (API v3, credentials in the environment) and returns its output. `what`
 * names the action in errors. A missing etcdctl names the package to install.
 */
export function etcdctl(args: string[], settings: EtcdSettings | undefined, what: string, timeoutMs = 120_000): Promise<EtcdctlOutput> {
  return new Promise((resolve, reject) => {
    execFile('etcdctl', args, { env: etcdctlEnv(settings), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
      if (e.code === 'ENOENT') return reject(new UserError(`${what}: etcdctl is not installed: ${INSTALL_HINT}`));
      const tail = stderrTail(stderr) || stdout.trim().split('\n').slice(-1)[0] || '';
      reject(new EtcdctlError(`${what} failed (${e.killed ? 'timed out' : `exit code ${String(e.code)}`})${tail ? `: ${tail}` : ''}`, tail));
    });
  });
}

/** `etcdctl version`, as `3.4.23`; checks that etcdctl is there before anything else. */
export async function etcdctlVersion(what: string): Promise<string> {
  const { stdout } = await etcdctl(['version'], undefined, what, 10_000);
  return /etcdctl version:\s*(\S+)/.exec(stdout)?.[1] ?? 'unknown';
}

export interface EndpointStatus {
  endpoint: string;
  version: string;
  /** Hex, as etcdctl's table output and etcd's logs show it (the JSON number exceeds 2^53). */
  clusterId: string;
  revision: number;
  dbSize: number;
}

/** A uint64 field of etcdctl's JSON, read from the text so no precision is lost, as hex. */
function uint64Hex(json: string, field: string): string {
  const m = new RegExp(`"${field}":(\\d+)`).exec(json);
  return m ? BigInt(m[1]!).toString(16) : 'unknown';
}

/**
 * Preflight: `etcdctl endpoint status` on each endpoint in turn; the first that answers is the
 * one the snapshot is taken from (a v3 snapshot is requested from exactly one member).
 */
export async function firstReachable(s: EtcdSettings, target: string): Promise<EndpointStatus> {
  const unreachable: string[] = [];
  for (const endpoint of s.endpoints) {
    let stdout: string;
    try {
      ({ stdout } = await etcdctl(
        [...connectionArgs(s, endpoint), `--dial-timeout=${DIAL_TIMEOUT}`, `--command-timeout=${STATUS_TIMEOUT}`, 'endpoint', 'status', '-w', 'json'],
        s,
        `target ${target}: etcdctl endpoint status on ${endpoint}`,
        60_000,
      ));
    } catch (err) {
      if (!(err instanceof EtcdctlError)) throw err;
      const cause = err.detail;
      // Nothing listening, or no answer in time: try the next endpoint. Anything else (bad
      // credentials, TLS, permissions) is the same on every member: say it now.
      if (/connection refused|deadline exceeded|no such host|i\/o timeout|Unavailable|no route to host|network is unreachable/i.test(cause) || cause === '') {
        unreachable.push(`${endpoint} (${/connection refused/i.test(cause) ? 'connection refused' : /no such host/i.test(cause) ? 'no such host' : 'no answer'})`);
        continue;
      }
      throw new UserError(`target ${target}: etcd endpoint ${endpoint}: ${cause}`);
    }
    const parsed = JSON.parse(stdout) as { Status?: { header?: { revision?: number }; version?: string; dbSize?: number } }[];
    const st = parsed[0]?.Status;
    if (!st) throw new UserError(`target ${target}: etcd endpoint ${endpoint} gave no status`);
    return { endpoint, version: st.version ?? 'unknown', clusterId: uint64Hex(stdout, 'cluster_id'), revision: st.header?.revision ?? 0, dbSize: st.dbSize ?? 0 };
  }
  throw new UserError(`target ${target}: etcd is unreachable: no endpoint answered within ${DIAL_TIMEOUT} + ${STATUS_TIMEOUT}: ${unreachable.join(', ')}`);
}

/** How many keys the keyspace held at `rev` (etcdctl 3.4 has no --count-only: a range's `count` is the total, whatever --limit). */
export async function keyCount(s: EtcdSettings, endpoint: string, rev: number | undefined, target: string): Promise<number> {
  const args = [...connectionArgs(s, endpoint), `--dial-timeout=${DIAL_TIMEOUT}`, `--command-timeout=${COMMAND_TIMEOUT}`, 'get', '', '--prefix', '--keys-only', '--limit=1', '-w', 'json'];
  if (rev) args.push(`--rev=${rev}`);
  const { stdout } = await etcdctl(args, s, `target ${target}: etcdctl get (key count) on ${endpoint}`, 60_000);
  const j = JSON.parse(stdout) as { count?: number };
  return j.count ?? 0;
}

export interface SnapshotStatus {
  /** Hex of etcd's hash of the snapshot's contents. */
  hash: string;
  revision: number;
  /** bbolt keys in every bucket (etcd's own keys included), as `snapshot status` counts them. */
  totalKey: number;
  totalSize: number;
}

/** `etcdctl snapshot status FILE -w json` (local: no endpoint, no credentials). */
export async function snapshotStatus(file: string, what: string): Promise<SnapshotStatus> {
  const { stdout } = await etcdctl(['snapshot', 'status', file, '-w', 'json'], undefined, what, 600_000);
  const j = JSON.parse(stdout) as { hash?: number; revision?: number; totalKey?: number; totalSize?: number };
  return { hash: (j.hash ?? 0).toString(16).padStart(8, '0'), revision: j.revision ?? 0, totalKey: j.totalKey ?? 0, totalSize: j.totalSize ?? 0 };
}
