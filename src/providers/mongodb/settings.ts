import path from 'node:path';
import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';
import type { ToolChoice } from './tools.js';

/**
 * A MongoDB connection string split into its parts. Not `new URL()`: a replica set's
 * `mongodb://a:27017,b:27017/` has several hosts, which WHATWG URLs reject.
 */
export interface MongoUri {
  scheme: 'mongodb' | 'mongodb+srv';
  /** Percent-encoded, as written. */
  username?: string;
  password?: string;
  /** `a:27017,b:27017`, as written. */
  hosts: string;
  /** The path's database (the default auth database), decoded; undefined when absent. */
  database?: string;
  /** `key=value` pairs, as written, in order. */
  options: [string, string][];
}

/** A mongodb target's settings, typed. */
export interface MongoSettings {
  /** The connection string as given: what the driver connects with. */
  uri: string;
  parsed: MongoUri;
  databases: string[] | 'all';
  mongodump: ToolChoice;
  mongorestore: ToolChoice;
  connectTimeoutS: number;
}

/** The three databases a server keeps for itself: `databases: all` never backs them up. */
export const SYSTEM_DATABASES = new Set(['admin', 'local', 'config']);

/** What the connection string spec says must be percent-encoded in a user name or password. */
const UNESCAPED = /[:/?#[\]@]|%(?![0-9A-Fa-f]{2})/;

/**
 * Splits a connection string. Messages never echo it: when it cannot be split the way the
 * driver will (a password with a raw `@` or `/`), any part shown could be the password.
 */
export function parseMongoUri(raw: string, what: string): MongoUri {
  const scheme = /^(mongodb(?:\+srv)?):\/\//.exec(raw.trim());
  if (!scheme) throw new UserError(`${what} must be a mongodb:// or mongodb+srv:// connection string (e.g. mongodb://user:\${env:MONGO_PASSWORD}@db.example.org:27017/?authSource=admin)`);
  const rest = raw.trim().slice(scheme[0].length);
  const q = rest.indexOf('?');
  const head = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? undefined : rest.slice(q + 1);
  // The last `@` ends the credentials whatever they hold, so a raw `@` or `/` in a password is
  // caught below instead of being taken for a host or a database.
  const at = head.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : head.slice(0, at);
  const location = head.slice(at + 1);
  const slash = location.indexOf('/');
  const hosts = slash < 0 ? location : location.slice(0, slash);
  const db = slash < 0 ? undefined : location.slice(slash + 1);
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    username = colon < 0 ? userinfo : userinfo.slice(0, colon);
    password = colon < 0 ? undefined : userinfo.slice(colon + 1);
    if (UNESCAPED.test(username) || (password !== undefined && UNESCAPED.test(password))) {
      throw new UserError(`${what}: the user name or password holds characters that a connection string needs percent-encoded (: / ? # [ ] @ %): store them encoded (e.g. with encodeURIComponent) in the variable the uri takes them from`);
    }
  }
  if (!/^[^\s/?#@]+$/.test(hosts)) throw new UserError(`${what} names no host (expected mongodb://[user:password@]host[:port][,host…]/[database][?options])`);
  const options = (query ?? '')
    .split('&')
    .filter(Boolean)
    .map((kv): [string, string] => {
      const eq = kv.indexOf('=');
      return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
    });
  let database: string | undefined;
  try {
    database = db ? decodeURIComponent(db) : undefined;
  } catch {
    throw new UserError(`${what}: the database in its path is not valid percent-encoding`);
  }
  return { scheme: scheme[1] as MongoUri['scheme'], username, password, hosts, database, options };
}

// Options whose values are credentials (AWS session tokens, key file passwords…).
const SECRET_OPTION = /password|secret|token|authmechanismproperties/i;

function format(u: MongoUri, opts: { mask: boolean; database: string | undefined }): string {
  const user = u.username === undefined ? '' : `${u.username}${u.password === undefined ? '' : `:${opts.mask ? '***' : u.password}`}@`;
  const options = u.options.map(([k, v]) => `${k}=${opts.mask && SECRET_OPTION.test(k) ? '***' : v}`).join('&');
  return `${u.scheme}://${user}${u.hosts}/${opts.database === undefined ? '' : encodeURIComponent(opts.database)}${options ? `?${options}` : ''}`;
}

/** The connection string for messages: password and credential options shown as `***`. */
export function maskUri(u: MongoUri): string {
  return format(u, { mask: true, database: u.database });
}

/**
 * The connection string handed to mongodump/mongorestore. The path's database goes: the tools
 * treat it as `--db` and refuse a different `--db` or `--nsInclude` beside it. It is also the
 * default auth database, so when credentials rely on it, it becomes an explicit `authSource`.
 */
export function toolUri(u: MongoUri): string {
  const hasAuthSource = u.options.some(([k]) => k.toLowerCase() === 'authsource');
  const options: [string, string][] = u.database !== undefined && u.username !== undefined && !hasAuthSource ? [...u.options, ['authSource', encodeURIComponent(u.database)]] : u.options;
  return format({ ...u, options }, { mask: false, database: undefined });
}

/** `db.example.org:27017` or `a:27017,b:27017`, or `cluster0.example.net (SRV)`: where, for people. */
export function where(u: MongoUri): string {
  return u.scheme === 'mongodb+srv' ? `${u.hosts} (SRV)` : u.hosts;
}

/** Resolves a tool path written in the policy: a bare name is looked up on PATH, a path is relative to the policy. */
function toolPath(value: string | undefined, baseDir: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  return value.includes('/') ? path.resolve(baseDir, value) : value;
}

export function mongoSettings(target: Pick<Target, 'name' | 'baseDir' | 'settings'>): MongoSettings {
  const s = target.settings as { uri: string; databases?: string[] | 'all'; mongodump_path?: string; mongorestore_path?: string; connect_timeout?: number };
  const dump = toolPath(s.mongodump_path, target.baseDir);
  const restore = toolPath(s.mongorestore_path, target.baseDir);
  return {
    uri: s.uri,
    parsed: parseMongoUri(s.uri, `target ${target.name}: uri`),
    databases: s.databases ?? 'all',
    mongodump: dump ? { bin: dump, source: 'from mongodump_path', setting: 'mongodump_path' } : { bin: 'mongodump', setting: 'mongodump_path' },
    mongorestore: restore
      ? { bin: restore, source: 'from mongorestore_path', setting: 'mongorestore_path' }
      : // Both tools ship together in the MongoDB Database Tools: a mongodump given by path names the folder.
        dump?.includes('/')
        ? { bin: path.join(path.dirname(dump), 'mongorestore'), source: 'beside mongodump_path', setting: 'mongorestore_path' }
        : { bin: 'mongorestore', setting: 'mongorestore_path' },
    connectTimeoutS: s.connect_timeout ?? 10,
  };
}

/**
 * Database names become unit names and folder names: anything but letters, digits, `_`, `-`
 * and `.` is percent-encoded (the same rule as the other engines), so no name escapes a folder.
 */
export function unitForDatabase(db: string): string {
  const enc = db.replace(/[^A-Za-z0-9_.-]/g, (ch) => Buffer.from(ch, 'utf8').reduce((acc, b) => `${acc}%${b.toString(16).toUpperCase().padStart(2, '0')}`, ''));
  return enc === '.' || enc === '..' ? enc.replace(/\./g, '%2E') : enc;
}

export function databaseForUnit(unit: string): string {
  return decodeURIComponent(unit);
}

/** MongoDB's rule for database names on Linux servers: checked before a tool is handed one. */
export function checkDatabaseName(db: string, what: string): void {
  if (db === '' || /[/\\. "$\0]/.test(db) || Buffer.byteLength(db, 'utf8') >= 64) {
    throw new UserError(`${what}: "${db}" is not a valid MongoDB database name (1 to 63 bytes, none of / \\ . " $ or spaces)`);
  }
}

/** A namespace pattern for `--nsInclude`/`--nsFrom`/`--nsTo`: `*` and `\` in a name are escaped by backslash. */
export function nsPattern(db: string): string {
  return `${db.replace(/[\\*]/g, (c) => `\\${c}`)}.*`;
}
