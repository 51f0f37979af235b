import type { Diagnostic } from '../core/diagnostics.js';

export type BackupKind = 'scheduled' | 'on_demand';

/** The manifest written beside every artifact, last (DESIGN §4). Its presence is what makes a backup good. */
export interface Manifest {
  format: 'bkp-manifest/1';
  id: string;
  target: string;
  unit: string;
  engine: string;
  kind: BackupKind;
  /** ISO-8601 UTC. */
  started_at: string;
  finished_at: string;
  /** Bytes of the artifact as stored (after bkp's compression and encryption): `verify` checks them without the key. */
  size: number;
  /** sha256 hex of the artifact as stored. */
  sha256: string;
  /**
   * The storage-level compression bkp applied (src/storage/codec). An engine's own compression
   * (tar.gz, pg_dump -Fc) is in `facts.engine_compression`. Manifests written before bkp
   * encoded at the storage level (no `content_sha256`) recorded the engine's here instead.
   */
  compression: 'gzip' | 'zstd' | 'lz4' | 'none';
  /** `none`, or `aes-256-gcm-chunked/1` (the format is described in src/storage/codec/format.ts). */
  encryption: 'none' | string;
  /**
   * sha256 hex and bytes of the engine's output, before bkp's compression and encryption: what a
   * restore hands to the engine. Copies and deep checks compare these. Optional: absent in
   * manifests written before bkp encoded at the storage level.
   */
  content_sha256?: string;
  content_size?: number;
  /** File name of the artifact, beside the manifest. */
  artifact: string;
  /** Engine facts: server version, file count, table count… */
  facts: Record<string, unknown>;
  /** Set on a copy: the storage it was copied from. */
  copied_from?: string;
}

/**
 * A good backup (artifact and manifest both present) as observed in one storage. Built from the
 * storage listing alone: the artifact's name carries its start time, id and kind, so planning over
 * hundreds of thousands of backups reads no file. `manifest` is filled where it was read (list,
 * verify, restore).
 */
export interface BackupRecord {
  storage: string;
  target: string;
  unit: string;
  id: string;
  kind: BackupKind;
  /** ISO-8601 UTC, to the second (from the artifact name). */
  started_at: string;
  /** Storage key of the artifact (`<target>/<unit>/<stamp>-<id>.<ext>`). */
  key: string;
  manifestKey: string;
  /** Bytes as stored, when the listing gave it. */
  size?: number;
  manifest?: Manifest;
}

/** Something under a target's folder that is not a good backup: a temp file, or an artifact whose manifest never got written. */
export interface IncompleteArtifact {
  storage: string;
  key: string;
  target: string;
  unit?: string;
  /** What is wrong with it, for the plan's reason: `artifact without manifest`… */
  why: string;
  /** Bytes and last modification, when the listing gave them. */
  size?: number;
  modified_at?: string;
}

/** A lock file in a storage (DESIGN §4). */
export interface LockInfo {
  /** The lock's id: `bkp unlock ID` removes it. Locks are per target, so the id is the target name. */
  id: string;
  storage: string;
  holder: string;
  host: string;
  pid: number;
  created_at: string;
  expires_at: string;
  /** `target/unit` pairs the holder is working on. */
  units: string[];
}

/** What one storage holds right now. */
export interface ObservedStorage {
  name: string;
  backups: BackupRecord[];
  incomplete: IncompleteArtifact[];
  locks: LockInfo[];
  /** Set when the storage could not be read; the plan then does nothing that depends on it. */
  error?: string;
  /** Things worth a warning that are not backups: a PARTIAL or FAILED snapshot in an engine catalog. */
  warnings?: string[];
}

/** What the live system of a target looks like (units discovered, engine errors). */
export interface ObservedTarget {
  name: string;
  /** Units the engine discovered (databases, or `files` for the files engine). */
  units: string[];
  error?: string;
  /**
   * Declarative resources found on the live system (DESIGN §4): those bkp manages for this
   * target, and any other that holds a name bkp wants. Absent for engines without resources.
   */
  resources?: ObservedResource[];
  /** Set when the resources could not be read: the plan then changes none of them. */
  resourcesError?: string;
}

/** Things bkp keeps on a live system as declared in the policy (DESIGN §3, §6). */
export type ResourceKind = 'replication' | 'snapshot_repository' | 'snapshot_policy';

/** A resource field's value: flat, so plans can diff it field by field. */
export type ResourceValue = string | number | boolean | null;

/**
 * A resource as the policy declares it. Built by a pure function of the target
 * (src/planner/resources/), so it may hold secrets (the credentials a replication uses):
 * `sensitive` names the fields that never reach a plan, only whether they changed.
 */
export interface DesiredResource {
  kind: ResourceKind;
  target: string;
  unit?: string;
  /** Its identity on the live system: a `_replicator` document id, a repository name. */
  name: string;
  spec: Record<string, ResourceValue>;
  sensitive: string[];
  /**
   * A task that runs once and completes (a one-shot replication): run again when the schedule
   * is due, and by `bkp backup`.
   */
  rerunnable?: boolean;
}

/** Where a run-once resource stands on the live system. */
export interface ResourceState {
  status: 'pending' | 'running' | 'completed' | 'failed' | 'crashing' | 'unknown';
  /** The system's own words when it failed or crashes. */
  error?: string;
  /** ISO-8601: when it last completed (or last changed state, when that is all the system says). */
  last_run_at?: string;
}

/** A resource as found on the live system. */
export interface ObservedResource {
  kind: ResourceKind;
  name: string;
  /** Carries bkp's mark (DESIGN §4): only these are ever changed or deleted. */
  managed: boolean;
  /** The target and unit named in bkp's mark. */
  target?: string;
  unit?: string;
  /** The same fields as the desired spec, as found. */
  spec: Record<string, ResourceValue>;
  /** Fields of `spec` that are secrets (credentials): compared, never shown. */
  sensitive: string[];
  /** The system's revision (`_rev`), so apply changes exactly what was planned. */
  revision?: string;
  /** The spec digest bkp wrote in its mark (resources/digest.ts): tells drift from a policy change. */
  mark_digest?: string;
  /** The name is free, but a deleted managed resource left a trace (a CouchDB tombstone). */
  deleted?: boolean;
  state?: ResourceState;
}

/** Everything the planner may look at. Gathered by observe(); the planner does no I/O. */
export interface ObservedState {
  storages: ObservedStorage[];
  targets: ObservedTarget[];
}

/** What a plan does, Terraform-style. */
export type Op = 'create' | 'update' | 'delete';

interface ActionBase {
  /** Stable id: the same situation always gives the same id. */
  id: string;
  target: string;
  unit?: string;
  /** Why this action is in the plan, for people only: apply never reads it. */
  reason: string;
}

/** Take a backup of one unit into the primary storage. */
export interface BackupAction extends ActionBase {
  kind: 'backup';
  op: 'create';
  unit: string;
  storage: string;
  backup_kind: BackupKind;
  after: { storage: string; kind: BackupKind; engine: string };
}

/** Delete a backup retention no longer keeps. */
export interface PruneAction extends ActionBase {
  kind: 'prune';
  op: 'delete';
  unit: string;
  storage: string;
  before: { id: string; key: string; manifest_key: string; started_at: string; kind: BackupKind; size?: number };
  /** The backup action of the same unit: when it fails, apply skips this prune (DESIGN §5). */
  requires?: string;
}

/**
 * Copy a backup into another storage of its target (DESIGN §6: the first storage is the
 * primary, the others get copies, also of backups made before they were added).
 */
export interface CopyAction extends ActionBase {
  kind: 'copy';
  op: 'create';
  unit: string;
  /** The storage that receives the copy. */
  storage: string;
  /**
   * Where the bytes come from: an existing backup, or (no `id`) the backup this apply takes of
   * the unit, named by `requires`.
   */
  source: { storage: string; id?: string; key?: string; manifest_key?: string; started_at?: string; kind: BackupKind };
  requires?: string;
}

/** Delete an incomplete artifact left by a killed or failed backup. */
export interface CleanupAction extends ActionBase {
  kind: 'cleanup';
  op: 'delete';
  storage: string;
  before: { key: string; size?: number; modified_at?: string };
}

/**
 * Create, change or delete a declarative resource (a replication task, a snapshot repository or
 * policy). `before`/`after` hold the spec with sensitive fields masked; apply rebuilds the real
 * values from the policy, so a plan file never holds a secret.
 */
export interface ResourceAction extends ActionBase {
  kind: ResourceKind;
  op: Op;
  name: string;
  /**
   * `create`/`delete`: declared or no longer declared; `change`: the policy changed it; `drift`:
   * changed or deleted on the live system by hand; `rerun`: a completed one-shot task run again.
   */
  change: 'create' | 'change' | 'drift' | 'rerun' | 'delete';
  before?: Record<string, ResourceValue>;
  after?: Record<string, ResourceValue>;
  /** Fields that differ (sensitive ones included, by name only). */
  changed?: string[];
  /** The observed revision apply expects to find. */
  revision?: string;
}

/** Every action a plan may hold; later engines add theirs to this union. */
export type Action = BackupAction | CopyAction | PruneAction | CleanupAction | ResourceAction;

export const RESOURCE_KINDS: readonly ResourceKind[] = ['replication', 'snapshot_repository', 'snapshot_policy'];

export function isResourceAction(a: Action): a is ResourceAction {
  return (RESOURCE_KINDS as readonly string[]).includes(a.kind);
}

export interface PlanSummary {
  create: number;
  update: number;
  delete: number;
}

/** A plan as data: the JSON form (`schemas/plan.schema.json`) is the versioned contract. */
export interface Plan {
  format_version: '1';
  bkp_version: string;
  policy_file: string;
  policy_digest: string;
  /** sha256 of what was observed; a saved plan is stale when this changes. */
  observed_fingerprint: string;
  now: string;
  targets: string[];
  actions: Action[];
  /** Errors block apply (mass prune without `--allow-mass-prune`); warnings are shown. */
  diagnostics: Diagnostic[];
  /** Units skipped because another apply holds them, or observation failed. */
  notes: { target: string; unit?: string; message: string }[];
  summary: PlanSummary;
}

/** Options that change what the planner decides. */
export interface PlanOptions {
  /** Only these targets (empty: all). */
  targets?: string[];
  allowMassPrune?: boolean;
  /** `bkp backup T`: back these units up now as on-demand, whatever the schedule; no prune. */
  onDemand?: { target: string; units?: string[] };
}
