import { MongoClient, MongoServerError, MongoServerSelectionError } from 'mongodb';
import { UserError } from '../../core/diagnostics.js';
import { maskUri, SYSTEM_DATABASES, where, type MongoUri } from './settings.js';

/** Where the driver connects: the connection string as given, and the parts for messages. */
export interface MongoEndpoint {
  uri: string;
  parsed: MongoUri;
  connectTimeoutS: number;
}

/**
 * Opens a client, runs `fn`, closes it. Server selection is bounded by `connect_timeout`, so an
 * unreachable server fails in seconds (the driver's default is 30s), with a message that names
 * the target and the connection string with its password masked.
 */
export async function withClient<T>(e: MongoEndpoint, target: string, fn: (c: MongoClient) => Promise<T>): Promise<T> {
  const ms = e.connectTimeoutS * 1000;
  let client: MongoClient;
  try {
    client = new MongoClient(e.uri, { serverSelectionTimeoutMS: ms, connectTimeoutMS: ms, appName: 'bkp' });
  } catch (err) {
    throw new UserError(`target ${target}: uri ${maskUri(e.parsed)}: ${(err as Error).message}`);
  }
  try {
    await client.connect();
  } catch (err) {
    await client.close().catch(() => undefined);
    throw describeConnectError(err, e, target);
  }
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof UserError) throw err;
    if (err instanceof MongoServerSelectionError) throw describeConnectError(err, e, target);
    throw new UserError(`target ${target}: MongoDB at ${where(e.parsed)}: ${(err as Error).message}`);
  } finally {
    await client.close().catch(() => undefined);
  }
}

function describeConnectError(err: unknown, e: MongoEndpoint, target: string): UserError {
  const head = `target ${target}: cannot connect to MongoDB at ${maskUri(e.parsed)}`;
  const msg = (err as Error).message ?? String(err);
  if (err instanceof MongoServerError && (err.code === 18 || err.codeName === 'AuthenticationFailed')) {
    return new UserError(`${head}: authentication failed for user "${decodeURIComponent(e.parsed.username ?? '')}"`);
  }
  if (/ECONNREFUSED/.test(msg)) return new UserError(`${head}: connection refused (is mongod running and listening on that address?)`);
  if (/ENOTFOUND|EAI_AGAIN|querySrv/.test(msg)) return new UserError(`${head}: host not found`);
  if (err instanceof MongoServerSelectionError || /timed out|timeout/i.test(msg)) {
    return new UserError(`${head}: no server answered within ${e.connectTimeoutS}s${msg && !/Server selection timed out/.test(msg) ? ` (${msg})` : ''}`);
  }
  return new UserError(`${head}: ${msg}`);
}

/** Preflight: the server answers `ping`, and `buildInfo` says which version it is. */
export async function serverVersion(c: MongoClient): Promise<string> {
  const admin = c.db('admin');
  await admin.command({ ping: 1 });
  const info = await admin.command({ buildInfo: 1 });
  return typeof info.version === 'string' ? info.version : 'unknown';
}

function isUnauthorized(err: unknown): boolean {
  return err instanceof MongoServerError && (err.code === 13 || err.codeName === 'Unauthorized');
}

/**
 * Databases the user may read, names only, or undefined when the user may not list them (a
 * backup user granted `read` on one database only): then nothing can be checked up front.
 */
export async function listDatabaseNames(c: MongoClient): Promise<string[] | undefined> {
  try {
    const r = await c.db('admin').admin().listDatabases({ nameOnly: true, authorizedDatabases: true });
    return r.databases.map((d) => d.name).sort();
  } catch (err) {
    if (isUnauthorized(err)) return undefined;
    throw err;
  }
}

/** `databases: all`: every database but the server's own (admin, local, config). */
export async function userDatabases(c: MongoClient): Promise<string[]> {
  const names = await listDatabaseNames(c);
  if (names === undefined) throw new UserError('databases: all needs the listDatabases privilege; list the databases instead');
  return names.filter((n) => !SYSTEM_DATABASES.has(n));
}

export interface CollectionInfo {
  name: string;
  /** `collection`, `view` or `timeseries`. */
  type: string;
}

/** Collections and views of a database, without the `system.*` ones the server manages itself. */
export async function listCollections(c: MongoClient, db: string): Promise<CollectionInfo[]> {
  const infos = await c.db(db).listCollections({}, { nameOnly: true, authorizedCollections: true }).toArray();
  return infos
    .map((i) => ({ name: i.name, type: typeof i.type === 'string' ? i.type : 'collection' }))
    .filter((i) => !i.name.startsWith('system.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Documents per collection (views and time series left out), with `countDocuments`, not
 * `estimatedDocumentCount`: restore fails on any difference, so the count must be exact.
 * estimatedDocumentCount reads collection metadata, which drifts after an unclean shutdown
 * and, on a sharded cluster, includes orphaned documents and chunks in migration; it would make
 * a correct restore look wrong. countDocuments reads the collection (an index scan at best),
 * which costs far less than the dump that reads every document anyway.
 */
export async function documentCounts(c: MongoClient, db: string, collections: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of collections) out[name] = await c.db(db).collection(name).countDocuments({});
  return out;
}
