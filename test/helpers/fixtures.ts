import type { Policy, RetentionRules, Target } from '../../src/policy/types.js';
import type { BackupKind, BackupRecord, ObservedState } from '../../src/planner/types.js';
import { artifactKey, manifestKeyFor } from '../../src/storage/catalog-keys.js';

/** A one-target policy built in code, for planner tests that need no file. */
export function policyWith(opts: { cron?: string; timezone?: string; retention?: RetentionRules; storages?: string[]; storageRetention?: Record<string, RetentionRules>; targets?: string[] } = {}): Policy {
  const storages = opts.storages ?? ['local'];
  const schedule = { name: 'nightly', cron: opts.cron ?? '0 23 * * *', timezone: opts.timezone ?? 'UTC', retention: opts.retention ?? { keep_daily: 6, keep_weekly: 4 } };
  const targets: Record<string, Target> = {};
  for (const name of opts.targets ?? ['app']) {
    targets[name] = {
      name,
      engine: 'files',
      storage: storages,
      schedule,
      hooks: { before: [], after: [], timeoutMs: 60_000 },
      settings: { paths: ['./data'] },
      displaySettings: { paths: ['./data'] },
      baseDir: '/tmp',
    };
  }
  return {
    version: 1,
    file: 'bkp.yaml',
    digest: 'd'.repeat(64),
    storages: Object.fromEntries(storages.map((s) => [s, { type: 'local' as const, name: s, path: `/tmp/${s}`, retention: opts.storageRetention?.[s] }])),
    schedules: { nightly: schedule },
    targets,
    history: { successful: 30, failed: 10 },
  };
}

let counter = 0;
/** A good backup record as observe would build it from a listing. */
export function backup(time: string, opts: { target?: string; unit?: string; kind?: BackupKind; storage?: string; id?: string } = {}): BackupRecord {
  const id = opts.id ?? (++counter).toString(16).padStart(12, '0');
  const target = opts.target ?? 'app';
  const unit = opts.unit ?? 'files';
  const kind = opts.kind ?? 'scheduled';
  const key = artifactKey(target, unit, new Date(time), id, kind, 'tar.gz');
  return { storage: opts.storage ?? 'local', target, unit, id, kind, started_at: new Date(time).toISOString(), key, manifestKey: manifestKeyFor(key), size: 100 };
}

/** Observed state: backups in storages, units per target. */
export function observed(backups: BackupRecord[], opts: { storages?: string[]; units?: Record<string, string[]> } = {}): ObservedState {
  const storages = opts.storages ?? ['local'];
  return {
    storages: storages.map((name) => ({ name, backups: backups.filter((b) => b.storage === name), incomplete: [], locks: [] })),
    targets: Object.entries(opts.units ?? { app: ['files'] }).map(([name, units]) => ({ name, units })),
  };
}

/** Nightly backups at 23:00 UTC from `from` for `days` days. */
export function nightly(from: string, days: number, opts: { hour?: number } = {}): BackupRecord[] {
  const start = new Date(from);
  return Array.from({ length: days }, (_, i) => {
    const d = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + i, opts.hour ?? 23));
    return backup(d.toISOString());
  });
}
