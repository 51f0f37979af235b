import { UserError } from '../../core/diagnostics.js';
import type { InfluxHttp } from './settings.js';

const TIMEOUT_MS = 10_000;

interface QueryResult {
  series?: { name: string; columns: string[]; values?: unknown[][] }[];
  error?: string;
}

/** One InfluxQL statement over the HTTP API (`/query`), bounded by a timeout; errors name the server. */
export async function influxQuery(http: InfluxHttp, target: string, q: string, db?: string): Promise<QueryResult> {
  const params = new URLSearchParams({ q });
  if (db !== undefined) params.set('db', db);
  const head = `target ${target}: InfluxDB HTTP API at ${http.origin}`;
  let res: Response;
  try {
    res = await fetch(`${http.origin}/query?${params.toString()}`, {
      headers: http.authorization ? { authorization: http.authorization } : {},
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000}s` : e.cause?.code === 'ECONNREFUSED' ? 'connection refused' : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new UserError(`${head}: ${why} (set \`http:\` on the target when the HTTP API is not on port 8086 of the RPC host)`);
  }
  const text = await res.text();
  let body: { results?: QueryResult[]; error?: string };
  try {
    body = JSON.parse(text) as { results?: QueryResult[]; error?: string };
  } catch {
    throw new UserError(`${head}: HTTP ${res.status}, not an InfluxDB answer: ${text.slice(0, 200)}`);
  }
  if (res.status === 401 || res.status === 403) throw new UserError(`${head}: authentication failed (${body.error ?? res.status}): give user:password@ in \`http:\``);
  if (body.error) throw new UserError(`${head}: ${body.error}`);
  const result = body.results?.[0] ?? {};
  return result;
}

/** Every database but `_internal` (influxd's own monitoring), sorted. */
export async function listDatabases(http: InfluxHttp, target: string): Promise<string[]> {
  const r = await influxQuery(http, target, 'SHOW DATABASES');
  if (r.error) throw new UserError(`target ${target}: SHOW DATABASES on ${http.origin}: ${r.error}`);
  const names = (r.series?.[0]?.values ?? []).map((v) => String(v[0]));
  return names.filter((n) => n !== '_internal').sort();
}

export async function databaseExists(http: InfluxHttp, target: string, db: string): Promise<boolean> {
  const r = await influxQuery(http, target, 'SHOW DATABASES');
  if (r.error) throw new UserError(`target ${target}: SHOW DATABASES on ${http.origin}: ${r.error}`);
  return (r.series?.[0]?.values ?? []).some((v) => String(v[0]) === db);
}

/** `"name"` as an InfluxQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * After `influxd restore`, shards are briefly "disabled" while the server opens them: waits
 * (bounded) until the database answers queries, and returns its measurement count.
 */
export async function waitQueryable(http: InfluxHttp, target: string, db: string, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = await influxQuery(http, target, 'SELECT * FROM /.*/ LIMIT 1', db);
    if (!probe.error) break;
    if (!/shard is disabled|engine is closed/i.test(probe.error) || Date.now() > deadline) throw new UserError(`target ${target}: database "${db}" on ${http.origin} was restored but cannot be queried: ${probe.error}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const m = await influxQuery(http, target, `SHOW MEASUREMENTS ON ${ident(db)}`);
  return m.series?.[0]?.values?.length ?? 0;
}
