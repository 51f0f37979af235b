import path from 'node:path';
import { parse as parseUrl } from 'pg-connection-string';
import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';

/** Where a PostgreSQL server is and who to connect as; the password never reaches a command line. */
export interface PgConnection {
  host: string;
  port: number;
  user?: string;
  password?: string;
  passfile?: string;
  sslmode?: string;
  /** Database used for discovery and checks when no unit is involved. */
  dbname: string;
  connectTimeoutS: number;
}

/** A postgres target's settings, typed. */
export interface PgSettings {
  connection: PgConnection;
  databases: string[] | 'all';
  globals: boolean;
  pgDumpPath?: string;
}

type RawConnection = string | { host?: string; port?: number | string; user?: string; password?: string; passfile?: string; sslmode?: string; dbname?: string };

export function pgSettings(target: Target): PgSettings {
  const s = target.settings as { connection: RawConnection; databases?: string[] | 'all'; globals?: boolean; pg_dump_path?: string; connect_timeout?: number };
  const timeout = s.connect_timeout ?? 10;
  return {
    connection: parseConnection(s.connection, target, timeout),
    databases: s.databases ?? 'all',
    globals: s.globals === true,
    pgDumpPath: s.pg_dump_path ? path.resolve(target.baseDir, s.pg_dump_path) : undefined,
  };
}

/** Parses a URL or the object form; the URL's own database is where discovery connects. */
export function parseConnection(raw: RawConnection, target: Pick<Target, 'name' | 'baseDir'>, connectTimeoutS = 10): PgConnection {
  if (typeof raw === 'string') {
    if (!/^postgres(ql)?:\/\//.test(raw)) {
      throw new UserError(`target ${target.name}: connection must be a postgres:// URL or an object with host, port, user…`);
    }
    const u = parseUrl(raw);
    return {
      host: u.host ?? '127.0.0.1',
      port: u.port ? Number(u.port) : 5432,
      user: u.user ?? undefined,
      password: u.password ?? undefined,
      sslmode: typeof u.ssl === 'string' ? u.ssl : (new URL(raw).searchParams.get('sslmode') ?? undefined),
      dbname: u.database ?? 'postgres',
      connectTimeoutS,
    };
  }
  return {
    host: raw.host ?? '127.0.0.1',
    port: raw.port === undefined ? 5432 : Number(raw.port),
    user: raw.user,
    password: raw.password,
    passfile: raw.passfile ? path.resolve(target.baseDir, raw.passfile) : undefined,
    sslmode: raw.sslmode,
    dbname: raw.dbname ?? 'postgres',
    connectTimeoutS,
  };
}

/** `db.example.org:5432`, for messages. */
export function where(c: PgConnection): string {
  return `${c.host}:${c.port}`;
}

/** libpq environment for pg_dump/pg_restore/psql: secrets in the environment, not in `ps`. */
export function libpqEnv(c: PgConnection, dbname: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PGHOST: c.host, PGPORT: String(c.port), PGDATABASE: dbname, PGCONNECT_TIMEOUT: String(c.connectTimeoutS), PGAPPNAME: 'bkp' };
  for (const k of ['PGUSER', 'PGPASSWORD', 'PGPASSFILE', 'PGSSLMODE', 'PGSERVICE', 'PGOPTIONS'] as const) delete env[k];
  if (c.user) env.PGUSER = c.user;
  if (c.password) env.PGPASSWORD = c.password;
  if (c.passfile) env.PGPASSFILE = c.passfile;
  if (c.sslmode) env.PGSSLMODE = c.sslmode;
  return env;
}

/**
 * Database names become unit names and folder names: anything but letters, digits, `_`, `-`
 * and `.` is percent-encoded, so `my db/1` is the unit `my%20db%2F1` and can never escape a folder.
 */
export function unitForDatabase(db: string): string {
  const enc = db.replace(/[^A-Za-z0-9_.-]/g, (ch) => Buffer.from(ch, 'utf8').reduce((acc, b) => `${acc}%${b.toString(16).toUpperCase().padStart(2, '0')}`, ''));
  return enc === '.' || enc === '..' ? enc.replace(/\./g, '%2E') : enc;
}

export function databaseForUnit(unit: string): string {
  return decodeURIComponent(unit);
}

/** The unit that holds roles and tablespaces (`globals: true`); `@` never appears in an encoded database name. */
export const GLOBALS_UNIT = '@globals';
