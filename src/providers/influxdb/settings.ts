import path from 'node:path';
import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';

/** The HTTP API: where databases are listed and checked. Credentials never reach messages. */
export interface InfluxHttp {
  /** `http://host:port`, no credentials: for requests and messages. */
  origin: string;
  /** `Basic …` when the URL carried user:password@. */
  authorization?: string;
}

/** An influxdb target's settings, typed (DESIGN §6: `host`, `databases`, `influxd_path`, plus `http`). */
export interface InfluxSettings {
  /** `host:port` of the backup/restore RPC service (influxd's `bind-address`, default port 8088). */
  rpc: string;
  rpcHost: string;
  rpcPort: number;
  http: InfluxHttp;
  databases: string[] | 'all';
  influxdPath: string;
}

export const DEFAULT_RPC_PORT = 8088;
export const DEFAULT_HTTP_PORT = 8086;

function splitHostPort(raw: string, target: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:/\s]+))(?::(\d{1,5}))?$/.exec(raw.trim());
  if (!m) throw new UserError(`target ${target}: host "${raw}" is not a HOST:PORT address of influxd's backup RPC service (e.g. 127.0.0.1:8088)`);
  return { host: m[1] ?? m[2]!, port: m[3] ? Number(m[3]) : DEFAULT_RPC_PORT };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * `http`: the policy's URL, or — InfluxDB's defaults — the RPC host on port 8086. The RPC service
 * cannot list databases, so `databases: all` and restore checks go through the HTTP API.
 */
function parseHttp(raw: string | undefined, rpcHost: string, target: string): InfluxHttp {
  if (raw === undefined || raw === '') return { origin: `http://${formatHost(rpcHost)}:${DEFAULT_HTTP_PORT}` };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UserError(`target ${target}: http must be an http:// or https:// URL of influxd's HTTP API (e.g. http://127.0.0.1:8086)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`target ${target}: http must be an http:// or https:// URL (got ${u.protocol})`);
  const authorization = u.username ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` : undefined;
  const base = u.pathname.replace(/\/+$/, '');
  return { origin: `${u.protocol}//${u.host}${base}`, authorization };
}

export function influxSettings(target: Target): InfluxSettings {
  const s = target.settings as { host: string; http?: string; databases?: string[] | 'all'; influxd_path?: string };
  const { host, port } = splitHostPort(s.host, target.name);
  return {
    rpc: `${formatHost(host)}:${port}`,
    rpcHost: host,
    rpcPort: port,
    http: parseHttp(s.http, host, target.name),
    databases: s.databases ?? 'all',
    influxdPath: s.influxd_path ? path.resolve(target.baseDir, s.influxd_path) : 'influxd',
  };
}

/**
 * Database names become unit names and folder names: anything but letters, digits, `_`, `-`
 * and `.` is percent-encoded (as for postgres), so a name can never escape a folder.
 */
export function unitForDatabase(db: string): string {
  const enc = db.replace(/[^A-Za-z0-9_.-]/g, (ch) => Buffer.from(ch, 'utf8').reduce((acc, b) => `${acc}%${b.toString(16).toUpperCase().padStart(2, '0')}`, ''));
  return enc === '.' || enc === '..' ? enc.replace(/\./g, '%2E') : enc;
}

export function databaseForUnit(unit: string): string {
  return decodeURIComponent(unit);
}
