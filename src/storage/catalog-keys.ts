import type { BackupKind } from '../planner/types.js';
import { PARTIAL_MARKER } from './types.js';

/**
 * Names of things in a storage (DESIGN §4):
 *   <target>/<unit>/<stamp>-<id>[.ondemand].<ext>            the artifact
 *   <target>/<unit>/<stamp>-<id>[.ondemand].manifest.json    its manifest, written last
 *   locks/<target>.json                                       the apply lock of a target
 *   runs/<stamp>-<run id>.<succeeded|failed>.json             one record per apply run
 * The kind sits in the name (`.ondemand`) so a plan is made from the listing alone.
 */

const STAMP_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const NAME_RE = /^(\d{8}T\d{6}Z)-([0-9a-f]{6,32})(\.ondemand)?\.(.+)$/;
export const MANIFEST_SUFFIX = 'manifest.json';

/** `2026-11-21T23:00:00.123Z` → `20261121T230000Z` (seconds: finer is noise in a file name). */
export function toStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function plausibleStamp(s: string): boolean {
  const mo = +s.slice(4, 6), d = +s.slice(6, 8), h = +s.slice(9, 11), mi = +s.slice(11, 13), sec = +s.slice(13, 15);
  return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && sec <= 59;
}

export function fromStamp(stamp: string): Date | undefined {
  const m = STAMP_RE.exec(stamp);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}

function baseName(stamp: string, id: string, kind: BackupKind): string {
  return `${stamp}-${id}${kind === 'on_demand' ? '.ondemand' : ''}`;
}

export function artifactKey(target: string, unit: string, startedAt: Date, id: string, kind: BackupKind, ext: string): string {
  return `${target}/${unit}/${baseName(toStamp(startedAt), id, kind)}.${ext}`;
}

export function manifestKeyFor(artifact: string): string {
  const slash = artifact.lastIndexOf('/');
  const parsed = parseBackupName(artifact.slice(slash + 1));
  if (!parsed) throw new Error(`not an artifact key: ${artifact}`);
  return `${artifact.slice(0, slash + 1)}${baseName(parsed.stamp, parsed.id, parsed.kind)}.${MANIFEST_SUFFIX}`;
}

export interface ParsedBackupName {
  stamp: string;
  /** The start as ISO-8601 (`2026-11-21T23:00:00.000Z`), built from the stamp's digits. */
  startedAtIso: string;
  id: string;
  kind: BackupKind;
  /** `manifest.json` for a manifest, else the artifact's extension. */
  ext: string;
  isManifest: boolean;
}

/** Parses the last segment of a key; undefined for anything that is not a bkp artifact or manifest. */
export function parseBackupName(name: string): ParsedBackupName | undefined {
  if (name.includes(PARTIAL_MARKER)) return undefined;
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const stamp = m[1]!;
  // No Date per name: planning parses hundreds of thousands. The regex fixed the digits; a
  // calendar-impossible stamp (month 13) is not a name bkp writes, so it is not a backup.
  if (!plausibleStamp(stamp)) return undefined;
  return {
    stamp,
    startedAtIso: `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}.000Z`,
    id: m[2]!,
    kind: m[3] ? 'on_demand' : 'scheduled',
    ext: m[4]!,
    isManifest: m[4] === MANIFEST_SUFFIX,
  };
}

export function targetPrefix(target: string): string {
  return `${target}/`;
}

export const LOCKS_PREFIX = 'locks/';
export function lockKey(target: string): string {
  return `${LOCKS_PREFIX}${target}.json`;
}

export const RUNS_PREFIX = 'runs/';
export type RunStatus = 'succeeded' | 'failed';
/** The status sits in the name so history can be trimmed from a listing. */
export function runKey(startedAt: Date, runId: string, status: RunStatus): string {
  return `${RUNS_PREFIX}${toStamp(startedAt)}-${runId}.${status}.json`;
}
const RUN_RE = /^runs\/(\d{8}T\d{6}Z)-([0-9a-f]+)\.(succeeded|failed)\.json$/;
export function parseRunKey(key: string): { stamp: string; id: string; status: RunStatus } | undefined {
  const m = RUN_RE.exec(key);
  return m ? { stamp: m[1]!, id: m[2]!, status: m[3] as RunStatus } : undefined;
}
