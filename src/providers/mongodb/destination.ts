import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';
import type { MongoEndpoint } from './client.js';
import { checkDatabaseName, databaseForUnit, maskUri, parseMongoUri, toolUri, where, type MongoSettings } from './settings.js';

/** Where a restore goes: a server, a database on it, and how to reach it with the driver and the tools. */
export interface MongoDestination {
  endpoint: MongoEndpoint;
  toolUri: string;
  db: string;
  /** `127.0.0.1:27017`, for people. */
  where: string;
  /** `uri` for a safety backup of the destination, when it is not the target's own server. */
  uriSetting?: string;
}

/**
 * `--to` for mongodb: nothing (the unit's own database on the target's server), a database
 * name on the same server, or a mongodb:// connection string to another server, whose path
 * names the database (the unit's own name when it has none).
 */
export function restoreDestination(target: Target, s: MongoSettings, unit: string, to: string | undefined): MongoDestination {
  const own = { endpoint: { uri: s.uri, parsed: s.parsed, connectTimeoutS: s.connectTimeoutS }, toolUri: toolUri(s.parsed), where: where(s.parsed) };
  if (to === undefined || to === '') return { ...own, db: databaseForUnit(unit) };
  if (/^mongodb(\+srv)?:\/\//.test(to)) {
    const parsed = parseMongoUri(to, '--to');
    const db = parsed.database ?? databaseForUnit(unit);
    checkDatabaseName(db, `--to ${maskUri(parsed)}`);
    return { endpoint: { uri: to, parsed, connectTimeoutS: s.connectTimeoutS }, toolUri: toolUri(parsed), db, where: where(parsed), uriSetting: to };
  }
  if (/:\/\//.test(to)) throw new UserError(`--to ${to.replace(/:[^:@/]*@/, ':***@')}: for a mongodb target, give a database name or a mongodb:// connection string`);
  checkDatabaseName(to, '--to');
  return { ...own, db: to };
}
