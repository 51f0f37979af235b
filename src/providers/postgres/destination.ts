import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';
import { databaseForUnit, parseConnection, type PgConnection, type PgSettings } from './settings.js';

/** Where a restore goes: a server and a database, plus the connection setting that reaches it. */
export interface PgDestination {
  conn: PgConnection;
  db: string;
  /** `connection` for a safety backup of the destination, when it is not the target's own server. */
  connectionSetting?: string;
}

/**
 * `--to` for postgres: nothing (the unit's own database), a database name on the same server,
 * or a postgres:// URL whose path names the database.
 */
export function restoreDestination(target: Target, s: PgSettings, unit: string, to: string | undefined): PgDestination {
  if (to === undefined || to === '') return { conn: s.connection, db: databaseForUnit(unit) };
  if (/^postgres(ql)?:\/\//.test(to)) {
    const conn = parseConnection(to, target, s.connection.connectTimeoutS);
    const db = new URL(to).pathname.replace(/^\//, '');
    if (!db) throw new UserError(`--to ${to.replace(/:[^:@/]*@/, ':***@')}: the URL must name the database to restore into (…/DBNAME)`);
    return { conn: { ...conn, dbname: 'postgres' }, db: decodeURIComponent(db), connectionSetting: to };
  }
  if (/[/\\]/.test(to)) throw new UserError(`--to "${to}": for a postgres target, give a database name or a postgres:// URL`);
  return { conn: s.connection, db: to };
}
