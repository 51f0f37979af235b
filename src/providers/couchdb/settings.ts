import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';
import { registerSecret } from '../../core/secrets.js';

/**
 * A CouchDB server as bkp talks to it: where (no credentials, safe in messages) and how to
 * authenticate (kept apart, never printed).
 */
export interface CouchEndpoint {
  /** `https://host:port` or `https://host/prefix`, no credentials, no trailing slash. */
  origin: string;
  /** `Basic …` when the URL carried user:password@. */
  authorization?: string;
  credentials?: { username: string; password: string };
}

/** A couchdb target's settings, typed (DESIGN §6: `url`, `databases`, `replicate_to`, `continuous`, `export`). */
export interface CouchSettings {
  server: CouchEndpoint;
  databases: string[] | 'all';
  /** The replica server receiving one replication task per database (issue 4). */
  replicateTo?: CouchEndpoint;
  continuous: boolean;
  /** Also write NDJSON exports (default true). */
  export: boolean;
}

/**
 * Splits a server URL into a credential-free origin and its credentials. The password is
 * registered as a secret, so it is masked even where it shows up outside a URL (a server's error
 * text echoing it, say). `what` names the setting in errors; the raw value never appears in them.
 */
export function parseEndpoint(raw: string, what: string): CouchEndpoint {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new UserError(`${what} is not a URL: give http(s)://[user:password@]host[:port]`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`${what} must be an http:// or https:// URL (got ${u.protocol})`);
  if (u.search || u.hash) throw new UserError(`${what} must not carry a query string or fragment`);
  let credentials: CouchEndpoint['credentials'];
  if (u.username || u.password) {
    credentials = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
    registerSecret(credentials.password);
    registerSecret(u.password);
  }
  const origin = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  return {
    origin,
    credentials,
    authorization: credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined,
  };
}

/** The endpoint's URL with its credentials back in (for replication documents, which need them). */
export function urlWithCredentials(e: CouchEndpoint, path = ''): string {
  const u = new URL(`${e.origin}${path}`);
  if (e.credentials) {
    u.username = encodeURIComponent(e.credentials.username);
    u.password = encodeURIComponent(e.credentials.password);
  }
  return u.toString();
}

export function couchSettings(target: Target): CouchSettings {
  const s = target.settings as { url: string; databases?: string[] | 'all'; replicate_to?: string; continuous?: boolean; export?: boolean };
  return {
    server: parseEndpoint(s.url, `target ${target.name}: url`),
    databases: s.databases ?? 'all',
    replicateTo: s.replicate_to ? parseEndpoint(s.replicate_to, `target ${target.name}: replicate_to`) : undefined,
    continuous: s.continuous ?? false,
    export: s.export ?? true,
  };
}

/**
 * CouchDB's own databases, never backed up for `databases: all`: `_replicator`, `_users`,
 * `_global_changes` and any other name starting with `_` (CouchDB reserves them).
 */
export function isSystemDatabase(db: string): boolean {
  return db.startsWith('_');
}

/** CouchDB's rule for database names (its docs: "must begin with a lowercase letter"). */
export const DATABASE_NAME = /^[a-z][a-z0-9_$()+/-]*$/;

/**
 * Database names become unit names and folder names: anything but letters, digits, `_`, `-`
 * and `.` is percent-encoded (CouchDB allows `$()+/` in names), so a name can never escape a folder.
 */
export function unitForDatabase(db: string): string {
  return db.replace(/[^A-Za-z0-9_.-]/g, (ch) => Buffer.from(ch, 'utf8').reduce((acc, b) => `${acc}%${b.toString(16).toUpperCase().padStart(2, '0')}`, ''));
}

export function databaseForUnit(unit: string): string {
  return decodeURIComponent(unit);
}

/** A database's path segment in a URL: `/` in a name must be `%2F` on the wire. */
export function dbPath(db: string): string {
  return `/${encodeURIComponent(db)}`;
}
