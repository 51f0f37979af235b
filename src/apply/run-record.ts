import { hostname } from 'node:os';
import type { Storage } from '../storage/types.js';
import { parseRunKey, runKey, RUNS_PREFIX, type RunStatus } from '../storage/catalog-keys.js';
import type { ActionResult } from './events.js';
import type { PlanSummary } from '../planner/types.js';

/** What one apply (or `bkp backup`) did, kept in `runs/` of each storage it wrote (DESIGN §4). */
export interface RunRecord {
  format: 'bkp-run/1';
  id: string;
  command: string;
  host: string;
  pid: number;
  started_at: string;
  finished_at: string;
  status: RunStatus;
  targets: string[];
  plan_summary: PlanSummary;
  actions: ActionResult[];
}

export function makeRunRecord(fields: Omit<RunRecord, 'format' | 'host' | 'pid' | 'status'>): RunRecord {
  const status: RunStatus = fields.actions.some((a) => a.status === 'failed') ? 'failed' : 'succeeded';
  return { format: 'bkp-run/1', host: hostname(), pid: process.pid, status, ...fields };
}

/** Writes the record, then trims history to the newest N successful and M failed runs. */
export async function saveRunRecord(storage: Storage, record: RunRecord, history: { successful: number; failed: number }): Promise<void> {
  await storage.putText(runKey(new Date(record.started_at), record.id, record.status), `${JSON.stringify(record, null, 2)}\n`);
  const runs = (await storage.list(RUNS_PREFIX))
    .map((o) => ({ key: o.key, parsed: parseRunKey(o.key) }))
    .filter((r): r is { key: string; parsed: NonNullable<ReturnType<typeof parseRunKey>> } => r.parsed !== undefined)
    .sort((a, b) => b.key.localeCompare(a.key));
  const kept = { succeeded: 0, failed: 0 };
  const limit = { succeeded: history.successful, failed: history.failed };
  for (const r of runs) {
    kept[r.parsed.status] += 1;
    if (kept[r.parsed.status] > limit[r.parsed.status]) await storage.delete(r.key);
  }
}

/** Reads run records, newest first. */
export async function readRunRecords(storage: Storage, limit = Infinity): Promise<RunRecord[]> {
  const keys = (await storage.list(RUNS_PREFIX))
    .map((o) => o.key)
    .filter((k) => parseRunKey(k))
    .sort()
    .reverse()
    .slice(0, limit);
  const out: RunRecord[] = [];
  for (const k of keys) {
    try {
      out.push(JSON.parse(await storage.getText(k)) as RunRecord);
    } catch {
      // a record deleted between list and read by a concurrent trim
    }
  }
  return out;
}
