import { Client, errors, type estypes } from '@elastic/elasticsearch';
import { UserError } from '../../core/diagnostics.js';
import { redact } from '../../core/secrets.js';
import type { EsSettings } from './settings.js';

/**
 * Thin typed I/O over `@elastic/elasticsearch` for the elasticsearch engine: one function per
 * REST call bkp makes, results in Elasticsearch's own field names, every failure turned into one
 * line naming the target, the node (password masked) and Elasticsearch's error type and reason.
 * No business logic here: what to snapshot, keep or restore is decided by the caller.
 */

/**
 * Client 9.x asks for `compatible-with=9`, which every 8.x cluster refuses (400
 * media_type_header_exception, elastic/elasticsearch-js#2909). Version 8 of the REST API is
 * served by 8.x clusters natively and by 9.x clusters through REST compatibility.
 */
const COMPAT = 'application/vnd.elasticsearch+json; compatible-with=8';

export type EsSnapshotState = 'SUCCESS' | 'PARTIAL' | 'FAILED' | 'IN_PROGRESS' | 'INCOMPATIBLE';

export interface EsClusterInfo {
  name: string;
  cluster_name: string;
  cluster_uuid: string;
  /** `8.15.0` */
  version: string;
  /** `default`, or `serverless`. */
  build_flavor?: string;
}

export interface EsRepository {
  name: string;
  type: string;
  uuid?: string;
  /** As the cluster returns them: every leaf value a string (`compress: "true"`). */
  settings: Record<string, unknown>;
}

export interface EsShards {
  total: number;
  successful: number;
  failed: number;
}

export interface EsShardFailure {
  index: string;
  shard_id: number;
  reason: string;
  status: string;
  node_id?: string;
}

export interface EsSnapshot {
  snapshot: string;
  uuid: string;
  repository: string;
  state: EsSnapshotState;
  /** Why a snapshot FAILED or is PARTIAL, when the cluster says. */
  reason?: string;
  indices: string[];
  data_streams: string[];
  include_global_state: boolean;
  metadata: Record<string, unknown>;
  /** Elasticsearch version that took it. */
  version?: string;
  start_time_in_millis?: number;
  end_time_in_millis?: number;
  duration_in_millis?: number;
  shards: EsShards;
  failures: EsShardFailure[];
}

export interface EsCreateSnapshotOptions {
  /** Patterns; absent: everything the cluster would include by default. */
  indices?: string[];
  include_global_state: boolean;
  metadata?: Record<string, unknown>;
  /** Accept a PARTIAL snapshot instead of failing when primaries are missing. */
  partial?: boolean;
  ignore_unavailable?: boolean;
}

export interface EsRestoreOptions {
  /** Patterns among the snapshot's indices; absent: all of them. */
  indices?: string[];
  rename_pattern?: string;
  rename_replacement?: string;
  include_global_state?: boolean;
  include_aliases?: boolean;
  /** Restore what a PARTIAL snapshot holds of indices with failed shards. */
  partial?: boolean;
}

export interface EsRestoreResult {
  snapshot: string;
  /** Names as restored (after rename). */
  indices: string[];
  shards: EsShards;
}

export interface EsSlmConfig {
  indices?: string | string[];
  include_global_state?: boolean;
  ignore_unavailable?: boolean;
  partial?: boolean;
  /** `policy` is reserved: the cluster adds it to each snapshot's metadata itself. */
  metadata?: Record<string, unknown>;
  feature_states?: string[];
}

export interface EsSlmRetention {
  expire_after?: string;
  min_count?: number;
  max_count?: number;
}

/** The body of `PUT _slm/policy/<id>`. */
export interface EsSlmPolicyBody {
  /** Quartz cron, UTC: `0 30 1 * * ?` */
  schedule: string;
  /** Date math allowed: `<nightly-{now/d}>`; the cluster appends a unique suffix. */
  name: string;
  repository: string;
  config?: EsSlmConfig;
  retention?: EsSlmRetention;
}

export interface EsSlmInvocation {
  snapshot_name: string;
  time: number;
  start_time?: number;
  details?: string;
}

export interface EsSlmPolicy {
  id: string;
  version: number;
  modified_date_millis: number;
  policy: EsSlmPolicyBody;
  next_execution_millis?: number;
  last_success?: EsSlmInvocation;
  last_failure?: EsSlmInvocation;
  in_progress?: { name: string; uuid: string; state: string; start_time_millis: number };
}

export interface EsClient {
  /** The node for messages, password masked. */
  readonly displayNode: string;
  info(): Promise<EsClusterInfo>;
  /** Undefined when no repository has that name. */
  getRepository(name: string): Promise<EsRepository | undefined>;
  putRepository(name: string, type: string, settings: Record<string, unknown>, opts?: { verify?: boolean }): Promise<void>;
  deleteRepository(name: string): Promise<void>;
  /** With `wait`, the finished snapshot (in any state); without, undefined once the cluster accepted it. */
  createSnapshot(repo: string, name: string, opts: EsCreateSnapshotOptions, wait: boolean): Promise<EsSnapshot | undefined>;
  /** Every snapshot in the repository, oldest first, whoever made it. */
  listSnapshots(repo: string): Promise<EsSnapshot[]>;
  /** Undefined when the repository exists but holds no snapshot of that name. */
  getSnapshot(repo: string, name: string): Promise<EsSnapshot | undefined>;
  deleteSnapshot(repo: string, name: string): Promise<void>;
  /** With `wait` (default), what was restored; without, undefined once the cluster accepted it. */
  restoreSnapshot(repo: string, snapshot: string, opts: EsRestoreOptions, wait?: boolean): Promise<EsRestoreResult | undefined>;
  /** Names of the open indices matching the patterns (`*` wildcards, `-` exclusions), sorted. */
  openIndices(patterns: string[]): Promise<string[]>;
  /** Closes these indices (concrete names), e.g. so a restore may replace them. */
  closeIndices(names: string[]): Promise<void>;
  /** Undefined when no policy has that id. */
  getSlmPolicy(id: string): Promise<EsSlmPolicy | undefined>;
  putSlmPolicy(id: string, body: EsSlmPolicyBody): Promise<void>;
  deleteSlmPolicy(id: string): Promise<void>;
  /** Starts a snapshot now; returns its generated name. */
  executeSlmPolicy(id: string): Promise<string>;
  close(): Promise<void>;
}

/** A failed request: the one-line message, plus what the cluster said for callers that branch on it. */
export class EsRequestError extends UserError {
  /** HTTP status, when the cluster answered. */
  readonly status?: number;
  /** Elasticsearch's error type, e.g. `snapshot_missing_exception`. */
  readonly type?: string;
  readonly reason?: string;
  constructor(message: string, info: { status?: number; type?: string; reason?: string } = {}) {
    super(message);
    this.name = 'EsRequestError';
    this.status = info.status;
    this.type = info.type;
    this.reason = info.reason;
  }
}

type ClientSettings = Pick<EsSettings, 'node' | 'displayNode' | 'auth' | 'requestTimeoutMs' | 'snapshotTimeoutMs'>;

export function createEsClient(settings: ClientSettings, target: string): EsClient {
  const client = new Client({
    node: settings.node,
    auth: settings.auth ? ('apiKey' in settings.auth ? { apiKey: settings.auth.apiKey } : { username: settings.auth.username, password: settings.auth.password }) : undefined,
    headers: { accept: COMPAT, 'content-type': COMPAT },
    requestTimeout: settings.requestTimeoutMs,
    // One retry (after 1-2 s) rides out a proxy's 502/503 or a dropped keep-alive connection;
    // more makes an unreachable cluster take many seconds to say so.
    maxRetries: 1,
    name: 'bkp',
  });
  const head = `target ${target}: Elasticsearch at ${settings.displayNode}`;
  const long = { requestTimeout: settings.snapshotTimeoutMs };
  // A request that changes the cluster is not retried: a retry after a dropped connection whose
  // request did arrive would fail as "already exists" and hide what happened.
  const once = { maxRetries: 0 };

  async function call<T>(what: string, fn: () => Promise<T>, timeoutMs = settings.requestTimeoutMs): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw describeError(err, head, what, timeoutMs);
    }
  }

  /** Runs `fn`; a 404 whose type is one of `missing` becomes undefined. */
  async function orMissing<T>(what: string, missing: string[], fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call(what, fn);
    } catch (err) {
      if (err instanceof EsRequestError && err.status === 404 && err.type !== undefined && missing.includes(err.type)) return undefined;
      throw err;
    }
  }

  return {
    displayNode: settings.displayNode,

    info: () =>
      call('GET /', async () => {
        const r = await client.info();
        return { name: r.name, cluster_name: r.cluster_name, cluster_uuid: r.cluster_uuid, version: r.version.number, build_flavor: r.version.build_flavor };
      }),

    getRepository: (name) =>
      orMissing(`get snapshot repository "${name}"`, ['repository_missing_exception'], async () => {
        const r = await client.snapshot.getRepository({ name });
        const repo = r[name] as { type: string; uuid?: string; settings?: Record<string, unknown> } | undefined;
        if (!repo) return undefined;
        return { name, type: repo.type, uuid: repo.uuid, settings: repo.settings ?? {} };
      }),

    putRepository: (name, type, repoSettings, opts = {}) =>
      call(`register snapshot repository "${name}" (type ${type})`, async () => {
        // `body`: the client's repository union has no room for types it does not list.
        await client.snapshot.createRepository({ name, verify: opts.verify, body: { type, settings: repoSettings } }, once);
      }),

    deleteRepository: (name) =>
      call(`delete snapshot repository "${name}"`, async () => {
        await client.snapshot.deleteRepository({ name });
      }),

    createSnapshot: (repo, name, opts, wait) =>
      call(`create snapshot ${repo}/${name}`, async () => {
        const r = await client.snapshot.create(
          {
            repository: repo,
            snapshot: name,
            wait_for_completion: wait,
            indices: opts.indices,
            include_global_state: opts.include_global_state,
            metadata: opts.metadata,
            partial: opts.partial,
            ignore_unavailable: opts.ignore_unavailable,
          },
          wait ? { ...once, ...long } : once,
        );
        return r.snapshot ? toSnapshot(r.snapshot, repo) : undefined;
      }, wait ? settings.snapshotTimeoutMs : settings.requestTimeoutMs),

    listSnapshots: (repo) =>
      call(`list snapshots in repository "${repo}"`, async () => {
        const r = await client.snapshot.get({ repository: repo, snapshot: '_all', sort: 'start_time', order: 'asc' });
        return snapshotsOf(r, repo);
      }),

    getSnapshot: (repo, name) =>
      orMissing(`get snapshot ${repo}/${name}`, ['snapshot_missing_exception'], async () => {
        const r = await client.snapshot.get({ repository: repo, snapshot: name });
        return snapshotsOf(r, repo).find((s) => s.snapshot === name);
      }),

    deleteSnapshot: (repo, name) =>
      call(`delete snapshot ${repo}/${name}`, async () => {
        await client.snapshot.delete({ repository: repo, snapshot: name }, long);
      }, settings.snapshotTimeoutMs),

    restoreSnapshot: (repo, snapshot, opts, wait = true) =>
      call(`restore snapshot ${repo}/${snapshot}`, async () => {
        const r = await client.snapshot.restore(
          {
            repository: repo,
            snapshot,
            wait_for_completion: wait,
            indices: opts.indices,
            rename_pattern: opts.rename_pattern,
            rename_replacement: opts.rename_replacement,
            include_global_state: opts.include_global_state,
            include_aliases: opts.include_aliases,
            partial: opts.partial,
          },
          wait ? { ...once, ...long } : once,
        );
        if (!r.snapshot) return undefined;
        return { snapshot: r.snapshot.snapshot, indices: r.snapshot.indices, shards: shardsOf(r.snapshot.shards) };
      }, wait ? settings.snapshotTimeoutMs : settings.requestTimeoutMs),

    openIndices: (patterns) =>
      call('list indices', async () => {
        // All indices, matched here: `_cat/indices/<names>` fails on a concrete name that does not exist.
        const rows = await client.cat.indices({ format: 'json', h: ['index', 'status'], expand_wildcards: 'all' });
        const open = rows.filter((r) => r.status === 'open' && typeof r.index === 'string').map((r) => r.index as string);
        return matchIndices(open, patterns).sort();
      }),

    closeIndices: (names) =>
      call(`close ${names.length === 1 ? 'index' : 'indices'} ${names.join(', ')}`, async () => {
        if (names.length > 0) await client.indices.close({ index: names });
      }),

    getSlmPolicy: (id) =>
      orMissing(`get SLM policy "${id}"`, ['resource_not_found_exception'], async () => {
        const r = await client.slm.getLifecycle({ policy_id: id });
        const p = r[id];
        return p ? toSlmPolicy(id, p) : undefined;
      }),

    putSlmPolicy: (id, body) =>
      call(`put SLM policy "${id}"`, async () => {
        // The client's SlmRetention type demands all three fields; SLM takes any of them.
        const retention = body.retention as estypes.SlmRetention | undefined;
        await client.slm.putLifecycle({ policy_id: id, schedule: body.schedule, name: body.name, repository: body.repository, config: body.config, retention });
      }),

    deleteSlmPolicy: (id) =>
      call(`delete SLM policy "${id}"`, async () => {
        await client.slm.deleteLifecycle({ policy_id: id });
      }),

    executeSlmPolicy: (id) =>
      call(`execute SLM policy "${id}"`, async () => {
        const r = await client.slm.executeLifecycle({ policy_id: id }, once);
        return r.snapshot_name;
      }),

    close: () => client.close(),
  };
}

function shardsOf(s: estypes.ShardStatistics | undefined): EsShards {
  return { total: s?.total ?? 0, successful: s?.successful ?? 0, failed: s?.failed ?? 0 };
}

function millis(v: estypes.EpochTime<estypes.UnitMillis> | estypes.DurationValue<estypes.UnitMillis> | undefined): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function toSnapshot(s: estypes.SnapshotSnapshotInfo, repo: string): EsSnapshot {
  return {
    snapshot: s.snapshot,
    uuid: s.uuid,
    repository: s.repository ?? repo,
    state: (s.state ?? 'IN_PROGRESS') as EsSnapshotState,
    reason: s.reason ?? undefined,
    indices: s.indices ?? [],
    data_streams: s.data_streams ?? [],
    include_global_state: s.include_global_state ?? false,
    metadata: (s.metadata ?? {}) as Record<string, unknown>,
    version: s.version ?? undefined,
    start_time_in_millis: millis(s.start_time_in_millis),
    end_time_in_millis: millis(s.end_time_in_millis),
    duration_in_millis: millis(s.duration_in_millis),
    shards: shardsOf(s.shards),
    failures: (s.failures ?? []).map((f) => ({ index: f.index, shard_id: f.shard_id, reason: f.reason, status: f.status, node_id: f.node_id ?? undefined })),
  };
}

function snapshotsOf(r: estypes.SnapshotGetResponse, repo: string): EsSnapshot[] {
  // 8.x answers `snapshots`; clusters from 7.13 to 7.16 nested them in `responses`.
  const list = r.snapshots ?? (r.responses ?? []).flatMap((x) => x.snapshots ?? []);
  return list.map((s) => toSnapshot(s, repo));
}

function toSlmPolicy(id: string, p: estypes.SlmSnapshotLifecycle): EsSlmPolicy {
  const invocation = (i: estypes.SlmInvocation | undefined): EsSlmInvocation | undefined => {
    if (!i) return undefined;
    const extra = i as estypes.SlmInvocation & { start_time?: number; details?: string };
    return { snapshot_name: i.snapshot_name, time: Number(i.time), start_time: extra.start_time, details: extra.details };
  };
  const policy: EsSlmPolicyBody = {
    schedule: p.policy.schedule,
    name: p.policy.name,
    repository: p.policy.repository,
  };
  if (p.policy.config) policy.config = p.policy.config as EsSlmConfig;
  if (p.policy.retention) policy.retention = p.policy.retention as EsSlmRetention;
  return {
    id,
    version: Number(p.version),
    modified_date_millis: Number(p.modified_date_millis),
    policy,
    next_execution_millis: millis(p.next_execution_millis),
    last_success: invocation(p.last_success),
    last_failure: invocation(p.last_failure),
    in_progress: p.in_progress ? { name: p.in_progress.name, uuid: p.in_progress.uuid, state: p.in_progress.state, start_time_millis: Number(p.in_progress.start_time_millis) } : undefined,
  };
}

/**
 * Elasticsearch's multi-target syntax over a list of names: patterns apply in order, `*`
 * matches any run of characters, `-pattern` removes what earlier ones added, `_all` is `*`.
 */
export function matchIndices(names: string[], patterns: string[]): string[] {
  const parts = patterns.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
  const picked = new Set<string>();
  parts.forEach((p, i) => {
    const exclude = p.startsWith('-') && i > 0;
    const re = wildcard(exclude ? p.slice(1) : p === '_all' ? '*' : p);
    for (const n of names) {
      if (!re.test(n)) continue;
      if (exclude) picked.delete(n);
      else picked.add(n);
    }
  });
  return [...picked];
}

function wildcard(p: string): RegExp {
  return new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

interface EsErrorBody {
  error?: string | { type?: string; reason?: string; caused_by?: { type?: string; reason?: string }; root_cause?: { type?: string; reason?: string }[] };
  status?: number;
}

const CONNECT_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found (DNS lookup failed)',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ETIMEDOUT: 'connection timed out',
};

function describeError(err: unknown, head: string, what: string, timeoutMs: number): Error {
  if (err instanceof EsRequestError) return err;
  const line = (detail: string) => redact(`${head}: ${what}: ${detail}`);
  if (err instanceof errors.ResponseError) {
    const status = err.meta.statusCode ?? undefined;
    const body = (typeof err.meta.body === 'object' && err.meta.body !== null ? err.meta.body : {}) as EsErrorBody;
    const e = body.error;
    let type: string | undefined;
    let reason: string | undefined;
    let detail: string;
    if (typeof e === 'object' && e !== null) {
      type = e.type;
      reason = e.reason;
      detail = `${type ?? 'error'}: ${reason ?? '(no reason given)'}`;
      const cause = e.caused_by ?? e.root_cause?.[0];
      if (cause?.reason && cause.reason !== reason && !(reason ?? '').includes(cause.reason)) detail += ` (caused by ${cause.type ?? 'error'}: ${cause.reason})`;
    } else if (typeof e === 'string') {
      reason = e;
      detail = e;
    } else {
      detail = typeof err.meta.body === 'string' && err.meta.body !== '' ? err.meta.body.slice(0, 300) : 'no error body';
    }
    detail += status !== undefined ? ` (HTTP ${status})` : '';
    if (status === 401) detail += '; check the target\'s auth (api_key, or username and password)';
    if (type === 'media_type_header_exception') detail += '; bkp speaks the REST API of Elasticsearch 8 (8.x and 9.x clusters)';
    return new EsRequestError(line(detail), { status, type, reason });
  }
  if (err instanceof errors.TimeoutError) return new EsRequestError(line(`no answer within ${Math.round(timeoutMs / 1000)}s`));
  if (err instanceof errors.ProductNotSupportedError) {
    return new EsRequestError(line('the server did not answer as Elasticsearch (no "X-Elastic-Product: Elasticsearch" header); OpenSearch and proxies that drop that header are not supported'));
  }
  if (err instanceof errors.ConnectionError) {
    const code = Object.keys(CONNECT_CODES).find((c) => err.message.includes(c));
    return new EsRequestError(line(code ? CONNECT_CODES[code]! : err.message));
  }
  if (err instanceof errors.NoLivingConnectionsError) return new EsRequestError(line('no usable connection: earlier requests to this node failed'));
  if (err instanceof UserError) return err;
  return new EsRequestError(line(err instanceof Error ? err.message : String(err)));
}
