import type { Readable } from 'node:stream';
import type { BackupKind, BackupRecord, DesiredResource, Manifest, ObservedResource, PruneAction, ResourceAction } from '../planner/types.js';
import type { ActionOutput } from '../apply/events.js';
import type { Target } from '../policy/types.js';

/** Context handed to providers: where to log, the fixed clock, and a signal to stop. */
export interface ProviderContext {
  /** Informational lines (hook output, tool stderr); the caller decides how to show them. */
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** A backup being produced: the artifact as a stream, and the facts known once it ends. */
export interface BackupStream {
  stream: Readable;
  /** File extension of the artifact, without the dot: `tar.gz`, `dump`. */
  ext: string;
  compression: Manifest['compression'];
  /**
   * The storage-level compression when the storage sets none. Absent: gzip for an uncompressed
   * output. `none` when the user asked the engine for an uncompressed artifact (postgres
   * `compression: none`), which bkp must then not compress behind their back.
   */
  storageCompression?: 'none';
  /** Resolves after the stream ended successfully with engine facts; rejects if the engine failed. */
  done: Promise<Record<string, unknown>>;
}

export interface RestoreOptions {
  /** Engine-specific destination: a folder, a URL, a database name. */
  to?: string;
  force: boolean;
  /** etcd: the restored member's name and URLs (`--name`, `--peer-url`, `--client-url`). */
  name?: string;
  peerUrl?: string;
  clientUrl?: string;
}

/** Options of a restore from an engine catalog (Elasticsearch: which indices, renamed how). */
export interface CatalogRestoreOptions {
  force: boolean;
  indices?: string[];
  renamePattern?: string;
  renameReplacement?: string;
  /** bkp's clock, for the safety backup's start. */
  now: Date;
}

/** The destination of a restore, as the provider sees it. */
export interface RestoreDestination {
  /** For people, secrets masked: a folder, `database store on db.example.org:5432`. */
  destination: string;
  hasData: boolean;
  /** The unit (and settings overriding the target's) whose backup captures the destination. */
  safety?: { unit: string; settings?: Record<string, unknown> };
}

/** What restore did, for the user. */
export interface RestoreResult {
  destination: string;
  details: string[];
}

/**
 * One provider per engine, the only code that talks to that system (DESIGN §6, §7).
 * Loaded lazily by engine name, so `bkp --version` does not pay for drivers it does not use.
 */
export interface Provider {
  readonly engine: string;
  /** Units of a target: its databases (discovered for `all`), or the single `files` unit. */
  discoverUnits(target: Target, ctx: ProviderContext): Promise<string[]>;
  /** Starts a backup of one unit, streamed. */
  backup(target: Target, unit: string, ctx: ProviderContext): Promise<BackupStream>;
  /**
   * Where a restore would write, whether that destination holds data now, and how to take a
   * safety backup of it before it is overwritten (absent when the destination is not something
   * the engine can back up, e.g. a scratch folder).
   */
  restoreTarget(target: Target, unit: string, opts: RestoreOptions): Promise<RestoreDestination>;
  /** Restores an artifact (already checked against its sha256 on the way) into the destination. */
  restore(target: Target, unit: string, artifact: Readable, manifest: Manifest, opts: RestoreOptions, ctx: ProviderContext): Promise<RestoreResult>;
  /** Reads the whole artifact and checks the engine format (e.g. every tar entry). Returns facts found. */
  verifyDeep(target: Target, artifact: Readable, manifest: Manifest): Promise<string[]>;
  /**
   * Engines with declarative resources (DESIGN §6): what exists on the live system for the
   * declared ones, plus every resource carrying bkp's mark for this target.
   */
  observeResources?(target: Target, desired: DesiredResource[], ctx: ProviderContext): Promise<ObservedResource[]>;
  /**
   * Carries out one planned resource action. `desired` is rebuilt from the policy (with the
   * secrets a plan leaves out); absent for a delete. Fails when the live resource is no longer at
   * the planned revision.
   */
  applyResource?(target: Target, action: ResourceAction, desired: DesiredResource | undefined, ctx: ProviderContext): Promise<ActionOutput>;

  /**
   * Engines whose backups live in their own system (Elasticsearch snapshots in a repository,
   * planner/resources `engineCatalog`): the catalog, manifests filled in (built from the engine's
   * own records), and what is wrong with entries that are not good backups.
   */
  listCatalog?(target: Target, catalog: string, ctx: ProviderContext): Promise<{ backups: BackupRecord[]; warnings: string[] }>;
  /** Takes a backup inside the engine's catalog and returns its manifest. */
  takeBackup?(target: Target, unit: string, kind: BackupKind, startedAt: Date, ctx: ProviderContext): Promise<Manifest>;
  /** Checks a backup of the engine's catalog (`bkp verify`; `deep`: ask the engine to check the data too). */
  verifyCatalogBackup?(target: Target, backup: BackupRecord, deep: boolean): Promise<{ problems: string[]; details: string[] }>;
  /**
   * Restores a backup of the engine's catalog in place (`bkp restore`): refuses to overwrite live
   * data without `force`, and with it takes a safety backup first (returned in the result).
   */
  restoreCatalogBackup?(target: Target, backup: BackupRecord, opts: CatalogRestoreOptions, ctx: ProviderContext): Promise<RestoreResult & { safety?: Manifest }>;
  /** Deletes a backup from the engine's catalog (a prune). */
  deleteBackup?(target: Target, prune: PruneAction, ctx: ProviderContext): Promise<void>;
}
