import { readFileSync } from 'node:fs';
import pg from 'pg';
import { UserError } from '../../core/diagnostics.js';
import type { PgConnection } from './settings.js';
import { where } from './settings.js';

/**
 * Opens a `pg` client to one database, with a bounded timeout, and turns the usual failures into
 * messages that name the target, the server and the database (never the password).
 */
export async function connect(c: PgConnection, dbname: string, target: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.user,
    password: c.password ?? passwordFromPassfile(c, dbname),
    database: dbname,
    ssl: c.sslmode && !['disable', 'allow', 'prefer'].includes(c.sslmode) ? { rejectUnauthorized: c.sslmode === 'verify-full' || c.sslmode === 'verify-ca' } : undefined,
    connectionTimeoutMillis: c.connectTimeoutS * 1000,
    application_name: 'bkp',
  });
  client.on('error', () => undefined); // a server restart mid-query surfaces through the query's own rejection
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw describeConnectError(err, c, dbname, target);
  }
  return client;
}

export function describeConnectError(err: unknown, c: PgConnection, dbname: string, target: string): UserError {
  const e = err as NodeJS.ErrnoException & { code?: string; message: string };
  const head = `target ${target}: cannot connect to PostgreSQL at ${where(c)}, database "${dbname}"`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return new UserError(`${head}: connection refused (is the server running and listening on that address?)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(`${head}: host "${c.host}" not found`);
    case 'ETIMEDOUT':
      return new UserError(`${head}: timed out after ${c.connectTimeoutS}s`);
    case '28P01':
      return new UserError(`${head}: password authentication failed for user "${c.user ?? '(default)'}"`);
    case '3D000':
      return new UserError(`target ${target}: database "${dbname}" does not exist on ${where(c)}`);
    case '28000':
      return new UserError(`${head}: ${e.message}`);
    default:
      if (/timeout/i.test(e.message)) return new UserError(`${head}: timed out after ${c.connectTimeoutS}s`);
      return new UserError(`${head}: ${e.message}`);
  }
}

/** libpq's passfile lookup (host:port:db:user:password, `*` wildcards), for the pg client. */
function passwordFromPassfile(c: PgConnection, dbname: string): string | undefined {
  if (!c.passfile) return undefined;
  let text: string;
  try {
    text = readFileSync(c.passfile, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read passfile ${c.passfile}: ${(err as Error).message}`);
  }
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const fields = line.split(/(?<!\\):/).map((f) => f.replace(/\\([:\\])/g, '$1'));
    if (fields.length < 5) continue;
    const [h, p, d, u, ...pw] = fields;
    const match = (pattern: string | undefined, value: string | undefined) => pattern === '*' || pattern === value;
    if (match(h, c.host) && match(p, String(c.port)) && match(d, dbname) && match(u, c.user)) return pw.join(':');
  }
  return undefined;
}
