import { tmpdir } from 'node:os';
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

/** `compression` of a postgres target: done by pg_dump when it can, else in the stream. */
export type PgCompression = 'gzip' | 'zstd' | 'lz4' | 'none';

/**
 * The default method and level: the fastest that kept the artifact within 10% of gzip-6's size
 * on the bench's shop database (README, "PostgreSQL (issue 9)"): zstd level 1 is 0.98× gzip-6's
 * size for a ninth of its CPU time; lz4 is faster still but 1.7× larger.
 */
export const DEFAULT_COMPRESSION: PgCompression = 'zstd';
/** Levels when `compression_level` is not given: pg_dump's gzip default, and the fast ends of zstd and lz4. */
export const DEFAULT_LEVEL: Record<Exclude<PgCompression, 'none'>, number> = { gzip: 6, zstd: 1, lz4: 1 };
/** Levels each method accepts (zstd beyond 19 needs --ultra and gigabytes of memory). */
export const LEVELS: Record<Exclude<PgCompression, 'none'>, [number, number]> = { gzip: [1, 9], zstd: [1, 19], lz4: [1, 12] };

/** A postgres target's settings, typed. */
export interface PgSettings {
  connection: PgConnection;
  databases: string[] | 'all';
  globals: boolean;
  pgDumpPath?: string;
  /** `jobs` as written; undefined: the number of cores, at most the number of tables. */
  jobs?: number;
  compression: PgCompression;
  /** Undefined for `none`. */
  compressionLevel?: number;
  /** Where directory-format dumps and restores are staged (default: the OS temp folder). */
  tempDir: string;
}

type RawConnection = string | { host?: string; port?: number | string; user?: string; password?: string; passfile?: string; sslmode?: string; dbname?: string };

export function pgSettings(target: Target): PgSettings {
  const s = target.settings as {
    connection: RawConnection;
    databases?: string[] | 'all';
    globals?: boolean;
    pg_dump_path?: string;
    connect_timeout?: number;
    jobs?: number;
    compression?: PgCompression;
    compression_level?: number;
    temp_dir?: string;
  };
  const timeout = s.connect_timeout ?? 10;
  const compression = s.compression ?? DEFAULT_COMPRESSION;
  let level: number | undefined;
  if (compression === 'none') {
    if (s.compression_level !== undefined && s.compression_level !== 0) throw new UserError(`target ${target.name}: compression_level ${s.compression_level} needs a compression method (compression: none takes no level)`);
  } else {
    const [min, max] = LEVELS[compression];
    level = s.compression_level ?? DEFAULT_LEVEL[compression];
    if (level < min || level > max) throw new UserError(`target ${target.name}: compression_level ${level} is out of range for ${compression} (${min}..${max})`);
  }
  return {
    connection: parseConnection(s.connection, target, timeout),
    databases: s.databases ?? 'all',
    globals: s.globals === true,
    pgDumpPath: s.pg_dump_path ? path.resolve(target.baseDir, s.pg_dump_path) : undefined,
    jobs: s.jobs,
    compression,
    compressionLevel: level,
    tempDir: s.temp_dir ? path.resolve(target.baseDir, s.temp_dir) : tmpdir(),
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
