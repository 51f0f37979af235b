import type pg from 'pg';

/** What the manifest records about the server and the database (issue 3: version, size, tables). */
export interface DatabaseFacts {
  server_version: string;
  server_major: number;
  database_size: number;
  table_count: number;
}

export async function serverMajor(client: pg.Client): Promise<{ version: string; major: number }> {
  const r = await client.query<{ server_version: string; num: string }>(`SELECT current_setting('server_version') AS server_version, current_setting('server_version_num') AS num`);
  const row = r.rows[0]!;
  return { version: row.server_version.split(' ')[0]!, major: Math.floor(Number(row.num) / 10_000) };
}

/** Every database a backup of `all` covers: not templates, and ones that accept connections. */
export async function listDatabases(client: pg.Client): Promise<string[]> {
  const r = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname`);
  return r.rows.map((x) => x.datname);
}

export async function databaseExists(client: pg.Client, db: string): Promise<boolean> {
  const r = await client.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [db]);
  return (r.rowCount ?? 0) > 0;
}

/** Ordinary and partitioned tables outside the system schemas: what "has data" means for a restore. */
export async function tableCount(client: pg.Client): Promise<number> {
  const r = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
  );
  return Number(r.rows[0]!.n);
}

export async function databaseFacts(client: pg.Client): Promise<DatabaseFacts> {
  const { version, major } = await serverMajor(client);
  const size = await client.query<{ s: string }>(`SELECT pg_database_size(current_database()) AS s`);
  return { server_version: version, server_major: major, database_size: Number(size.rows[0]!.s), table_count: await tableCount(client) };
}
