import pg from 'pg';

/** Runs SQL against a database of a test server and closes the connection. */
export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A small but varied schema: several tables, a foreign key, bytea, jsonb, a sequence and a view. */
export async function seedStore(url: string): Promise<void> {
  await sql(
    url,
    `CREATE TABLE workspaces (id serial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now());
     CREATE TABLE intents (id bigserial PRIMARY KEY, workspace int REFERENCES workspaces(id), intent text, examples jsonb);
     CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
     CREATE VIEW intent_counts AS SELECT workspace, count(*) FROM intents GROUP BY workspace;
     INSERT INTO workspaces (name) SELECT 'ws-' || g FROM generate_series(1, 20) g;
     INSERT INTO intents (workspace, intent, examples) SELECT 1 + g % 20, 'intent-' || g, jsonb_build_object('n', g, 'text', repeat('x', g % 50)) FROM generate_series(1, 2000) g;
     INSERT INTO blobs SELECT g, decode(md5(g::text) || md5((g * 7)::text), 'hex') FROM generate_series(1, 300) g;`,
  );
}

/** Every row of every user table, in a stable order: two databases hold the same data iff these are equal. */
export async function dumpRows(url: string): Promise<Record<string, unknown[]>> {
  const tables = await sql<{ t: string }>(url, `SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`);
  const out: Record<string, unknown[]> = {};
  for (const { t } of tables) out[t] = (await sql(url, `SELECT * FROM ${t} ORDER BY 1`)).map((r) => JSON.parse(JSON.stringify(r)) as unknown);
  return out;
}
