import { DateTime } from 'luxon';
import type { BackupRecord } from '../planner/types.js';
import { UserError } from '../core/diagnostics.js';

/**
 * Picks the backup `--backup` names among a unit's good backups (oldest first): `latest`, an id
 * (or a unique prefix of one), or a DATE — the newest backup at or before it. A bare date means
 * the end of that day in the schedule's time zone, as the OpenCRVS runbook restores "a chosen day".
 */
export function selectBackup(backups: BackupRecord[], spec: string | undefined, timezone: string, what: string): BackupRecord {
  if (backups.length === 0) throw new UserError(`${what}: no good backup to restore`);
  // The manifest's start has milliseconds; the name only seconds, and two backups can share one.
  const start = (b: BackupRecord) => b.manifest?.started_at ?? b.started_at;
  const newestFirst = [...backups].sort((a, b) => start(b).localeCompare(start(a)));
  if (!spec || spec === 'latest') return newestFirst[0]!;

  const byId = backups.filter((b) => b.id === spec || (spec.length >= 4 && b.id.startsWith(spec)));
  const ids = [...new Set(byId.map((b) => b.id))];
  if (ids.length === 1) return byId[0]!;
  if (ids.length > 1) throw new UserError(`${what}: "${spec}" matches several backups (${ids.join(', ')}); give more of the id`);

  const limit = parseLimit(spec, timezone);
  if (!limit) throw new UserError(`${what}: --backup "${spec}" is neither "latest", a backup id, nor a date (2026-11-20 or 2026-11-20T23:00:00Z)`);
  const found = newestFirst.find((b) => new Date(start(b)).getTime() <= limit.getTime());
  if (!found) throw new UserError(`${what}: no backup at or before ${spec} (oldest is ${newestFirst[newestFirst.length - 1]!.started_at})`);
  return found;
}

function parseLimit(spec: string, timezone: string): Date | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(spec)) {
    const day = DateTime.fromISO(spec, { zone: timezone });
    return day.isValid ? day.endOf('day').toJSDate() : undefined;
  }
  const t = DateTime.fromISO(spec, { zone: timezone });
  return t.isValid ? t.toJSDate() : undefined;
}
