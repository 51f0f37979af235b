import type { SourceLocation } from '../core/diagnostics.js';

/** Retention rules, restic `forget` semantics (DESIGN §5). Counts: N ≥ 1, or -1 for unlimited. Durations: `7d`, `1y2m3d4h`. */
export interface RetentionRules {
  keep_last?: number;
  keep_hourly?: number;
  keep_daily?: number;
  keep_weekly?: number;
  keep_monthly?: number;
  keep_yearly?: number;
  keep_within?: string;
  keep_within_hourly?: string;
  keep_within_daily?: string;
  keep_within_weekly?: string;
  keep_within_monthly?: string;
  keep_within_yearly?: string;
  /** The on-demand pool: keep the N newest on-demand backups of a unit. */
  keep_on_demand?: number;
}

/** When a target is backed up and how long its backups live. */
export interface Schedule {
  /** The template name under `schedules:`, or undefined for an inline schedule. */
  name?: string;
  cron: string;
  /** IANA time zone; cron fires and retention buckets are taken in it. */
  timezone: string;
  retention: RetentionRules;
}

/** Shell commands run around a target's backup (`after` runs even when it fails), and after a restore. */
export interface Hooks {
  before: string[];
  after: string[];
  /** Run after a successful `bkp restore` of the target (the runbooks' post-restore scripts). */
  after_restore?: string[];
  /** Per command, in milliseconds. */
  timeoutMs: number;
}

interface StorageBase {
  name: string;
  /** Retention for backups in this storage, overriding the schedule's. */
  retention?: RetentionRules;
  /** Artifacts are encrypted with this key (interpolated: a secret) before they reach the storage. */
  encryption?: { key: string };
  /** How artifacts are compressed on the way in; undefined: the engine's default. */
  compression?: 'gzip' | 'zstd' | 'none';
  location?: SourceLocation;
}

/** A folder on this machine: the embedded default. */
export interface LocalStorageConfig extends StorageBase {
  type: 'local';
  /** Absolute, resolved against the policy file's folder. */
  path: string;
}

/** Storage kinds other issues add (sftp, s3) arrive with their options unparsed here. */
export interface OtherStorageConfig extends StorageBase {
  type: 'sftp' | 's3';
  options: Record<string, unknown>;
}

export type StorageConfig = LocalStorageConfig | OtherStorageConfig;

export type EngineName = 'files' | 'postgres' | 'couchdb' | 'mongodb' | 'elasticsearch' | 'etcd' | 'influxdb';

/** One thing to back up. Engine-specific fields stay in `settings`; each provider reads its own. */
export interface Target {
  name: string;
  engine: EngineName;
  /** Storage names, the first is the primary. */
  storage: string[];
  schedule: Schedule;
  hooks: Hooks;
  /** Engine fields after interpolation (may hold secrets: never print these). */
  settings: Record<string, unknown>;
  /** Engine fields as written, `${env:…}` kept: safe to print. */
  displaySettings: Record<string, unknown>;
  /** Folder of the policy file: relative paths in settings are resolved against it. */
  baseDir: string;
  location?: SourceLocation;
}

/** A validated, interpolated, normalized policy file. */
export interface Policy {
  version: 1;
  /** Path of the policy file as given. */
  file: string;
  /** sha256 of the file's bytes: ties a saved plan to the policy it was made from. */
  digest: string;
  storages: Record<string, StorageConfig>;
  schedules: Record<string, Schedule>;
  targets: Record<string, Target>;
  /** How many run records to keep (DESIGN §4). */
  history: { successful: number; failed: number };
}
