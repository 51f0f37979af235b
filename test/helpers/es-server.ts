/**
 * A PROTOCOL-LEVEL TEST DOUBLE OF ELASTICSEARCH, NOT A REAL CLUSTER (DESIGN §8).
 *
 * No Elasticsearch can be installed on these machines, so the elasticsearch engine is tested
 * against this small HTTP server, driven through the real `@elastic/elasticsearch` client. It
 * answers the REST calls bkp makes the way Elasticsearch 8.15 does: same paths and methods, same
 * response shapes, status codes and error bodies (`{"error":{"root_cause":[…],"type","reason"},
 * "status"}`), the `X-elastic-product: Elasticsearch` header the client checks on every 2xx
 * answer, and the REST-compatibility check on `Accept`/`Content-Type` (`compatible-with=9`, what
 * client 9.x sends by default, is refused with 400 media_type_header_exception as 8.x does).
 *
 * Implemented, in memory:
 * - `GET|HEAD /` (cluster info, version 8.15.0).
 * - Repositories: `PUT|POST /_snapshot/{repo}` (types fs, url, source, s3, azure, gcs; fs needs
 *   `settings.location`, checked against `pathRepo` when given), `GET /_snapshot[/{repos}]`,
 *   `DELETE /_snapshot/{repos}`, `POST /_snapshot/{repo}/_verify`. Settings come back as
 *   strings, as Elasticsearch returns them. Snapshots belong to the storage (fs location or the
 *   settings of other types), not to the registration: re-registering a location shows its
 *   snapshots again, as a real shared folder or bucket does.
 * - Snapshots: `PUT|POST /_snapshot/{repo}/{snap}` (date math names like `<nightly-{now/d}>`,
 *   `wait_for_completion`, indices as list or comma string with `*` and `-` exclusions,
 *   include_global_state, metadata, partial, ignore_unavailable), `GET /_snapshot/{repo}/{_all|
 *   _current|names,wildcards}` (`{snapshots,total,remaining}`, sort/order/size),
 *   `DELETE /_snapshot/{repo}/{names}`, `POST /_snapshot/{repo}/{snap}/_restore` (indices,
 *   rename_pattern/rename_replacement, partial; refuses an open index of the same name with 500
 *   snapshot_restore_exception; restores doc counts).
 * - SLM: `PUT|GET|DELETE /_slm/policy/{id}`, `GET /_slm/policy`, `PUT|POST /_slm/policy/{id}/_execute`
 *   (policy validation as 8.15: Quartz cron with one of day-of-month/day-of-week `?`, lowercase
 *   name after date math, reserved `policy` metadata key, existing repository; version,
 *   modified_date_millis, next_execution_millis, last_success/last_failure, stats).
 * - Indices: `GET /_cat/indices[/{patterns}]` (JSON with format=json), `GET|HEAD|PUT|DELETE /{index}`,
 *   `POST /{index}/_close|_open`, `GET /{index}/_count`, `POST /{index}/_bulk` (counts index and
 *   create actions). An index is a name, open or closed, and a document count; no documents,
 *   mappings or shards beyond one primary each.
 * - Security: with `auth` and/or `apiKey`, requests without matching Basic or ApiKey credentials
 *   get 401 security_exception with the real `WWW-Authenticate` headers and body.
 *
 * Not implemented (requests to them get 400 "no handler found", and are listed in `unhandled`):
 * searching, single-document APIs, `_bulk` without an index in the path, aliases, data streams, feature states, snapshot status,
 * clone, repository analysis, SLM retention runs (no snapshot ever expires here) and the SLM
 * scheduler (policies never fire by themselves: use `_execute`). Date math takes `{now}` with
 * +/- offsets, `/unit` rounding and a `{yyyy.MM.dd}`-style format, in UTC only. Why a snapshot
 * is PARTIAL or FAILED is not modelled: a test decides it with `nextSnapshot()`.
 *
 * `startEs()` connects to a real cluster instead when `BKP_TEST_ES_URL` is set (credentials may
 * be in the URL; the cluster needs `path.repo` set, repository locations are relative to it).
 * Then `double` is undefined: every hook under `double` (nextSnapshot, finishSnapshot,
 * setSnapshotState, snapshot, index, requests/unhandled/clearRequests) cannot work on a real
 * cluster, and a test that needs one must report itself skipped. `seedIndex`, `closeIndex`,
 * `prefix`, `repoLocation` and `stop` work on both.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import { freePort } from './postgres-server.js';

export type DoubleSnapshotState = 'SUCCESS' | 'PARTIAL' | 'FAILED' | 'IN_PROGRESS';

/** What the next snapshot the double takes (create or SLM execute) turns out to be. */
export interface SnapshotOutcome {
  state: DoubleSnapshotState;
  /** Why it FAILED or is PARTIAL; a default names the double. */
  reason?: string;
  /** PARTIAL: indices whose shard failed (default: the first index of the snapshot). */
  failedIndices?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or the raw text when it is not JSON, or undefined without a body. */
  body: unknown;
  /** Status the double answered with (0 while still waiting for completion). */
  status: number;
}

export interface DoubleSnapshotView {
  name: string;
  uuid: string;
  state: DoubleSnapshotState;
  indices: string[];
  metadata: Record<string, unknown>;
  include_global_state: boolean;
  /** Documents per index, as captured. */
  docs: Record<string, number>;
}

/** Hooks that reach into the double's state: none of them exists on a real cluster. */
export interface EsDoubleControls {
  readonly requests: readonly RecordedRequest[];
  /** Requests to endpoints the double does not implement. */
  readonly unhandled: readonly RecordedRequest[];
  clearRequests(): void;
  /** Queues the outcome of the next snapshot taken (by create or SLM execute), in order. */
  nextSnapshot(outcome: SnapshotOutcome): void;
  /** Completes an IN_PROGRESS snapshot; requests waiting for it are answered then. */
  finishSnapshot(repo: string, name: string, state?: Exclude<DoubleSnapshotState, 'IN_PROGRESS'>, reason?: string): void;
  /** Rewrites a snapshot's state after the fact (e.g. to test how a catalog shows it). */
  setSnapshotState(repo: string, name: string, state: DoubleSnapshotState, reason?: string): void;
  snapshot(repo: string, name: string): DoubleSnapshotView | undefined;
  index(name: string): { open: boolean; docs: number } | undefined;
}

export interface EsServer {
  /** Base URL; for a real cluster as given in BKP_TEST_ES_URL (credentials included). */
  url: string;
  real: boolean;
  /** Undefined on a real cluster. */
  double?: EsDoubleControls;
  /** Prefix for every index, repository and policy name a test creates ("" on the double). */
  prefix: string;
  /** A repository location the cluster accepts (relative: resolved against path.repo). */
  repoLocation(name: string): string;
  /** Creates (or replaces, on the double) an open index holding `docs` documents. */
  seedIndex(name: string, docs: number): Promise<void>;
  closeIndex(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface EsDoubleOptions {
  /** Require Basic credentials. */
  auth?: { username: string; password: string };
  /** Require `Authorization: ApiKey <this>` (the encoded key); with `auth`, either is accepted. */
  apiKey?: string;
  /** Version reported by `GET /` and in snapshots; default 8.15.0. */
  version?: string;
  /** Folders fs locations must be inside, as `path.repo`; [] refuses every fs repository. Default: anything goes. */
  pathRepo?: string[];
  /** The clock; default Date.now. */
  now?: () => number;
}

/** A real cluster when BKP_TEST_ES_URL is set, else the double. */
export async function startEs(opts: EsDoubleOptions = {}): Promise<EsServer> {
  const real = process.env.BKP_TEST_ES_URL;
  return real ? connectReal(real) : startEsDouble(opts);
}

// ---------------------------------------------------------------------------------------------
// The double

interface IndexRec {
  uuid: string;
  open: boolean;
  docs: number;
  created: number;
}

interface SnapRec {
  name: string;
  uuid: string;
  state: DoubleSnapshotState;
  reason?: string;
  indices: string[];
  docs: Record<string, number>;
  failedIndices: string[];
  include_global_state: boolean;
  metadata?: Record<string, unknown>;
  start: number;
  end: number;
  waiters: (() => void)[];
}

interface RepoRec {
  type: string;
  uuid: string;
  /** As given; shown stringified. */
  settings: Record<string, unknown>;
  /** Where its snapshots live: fs location or the type and settings. */
  storeKey: string;
}

interface Invocation {
  snapshot_name: string;
  start_time: number;
  time: number;
  details?: string;
}

interface SlmRec {
  policy: { name: string; schedule: string; repository: string; config?: Record<string, unknown>; retention?: Record<string, unknown> };
  version: number;
  modified: number;
  lastSuccess?: Invocation;
  lastFailure?: Invocation;
  stats: { snapshots_taken: number; snapshots_failed: number; snapshots_deleted: number; snapshot_deletion_failures: number };
}

type Json = Record<string, unknown>;

class EsHttpError extends Error {
  constructor(readonly status: number, readonly body: Json, readonly headers: Record<string, string | string[]> = {}) {
    super(JSON.stringify(body));
  }
}

/** Elasticsearch's error body: the innermost cause is the root cause. */
function esError(status: number, type: string, reason: string, extra: Json = {}, cause?: { type: string; reason: string; extra?: Json }): EsHttpError {
  const top: Json = { type, reason, ...extra };
  const root = cause ? { type: cause.type, reason: cause.reason, ...(cause.extra ?? {}) } : { type, reason, ...extra };
  if (cause) top.caused_by = { type: cause.type, reason: cause.reason, ...(cause.extra ?? {}) };
  return new EsHttpError(status, { error: { root_cause: [root], ...top }, status });
}

/** Errors Elasticsearch writes as a bare string (handler routing, content type). */
function plainError(status: number, message: string): EsHttpError {
  return new EsHttpError(status, { error: message, status });
}

const WWW_AUTHENTICATE = ['Basic realm="security" charset="UTF-8"', 'Bearer realm="security"', 'ApiKey'];
const REPO_TYPES = new Set(['fs', 'url', 'source', 's3', 'azure', 'gcs']);
const INVALID_NAME_CHARS = ['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ','];

function versionId(v: string): number {
  const [a = 0, b = 0, c = 0] = v.split('.').map(Number);
  return a * 1_000_000 + b * 10_000 + c * 100 + 99;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function uuid(): string {
  return randomBytes(16).toString('base64url').slice(0, 22);
}

function splitList(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
  if (typeof v === 'string') return v.split(',').map((x) => x.trim()).filter(Boolean);
  return [];
}

function wildcard(p: string): RegExp {
  return new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/**
 * Multi-target syntax: in order, `*` wildcards, `-` exclusions after the first entry, `_all`.
 * A concrete name that does not exist goes to `missing`. `*` skips dot-prefixed (hidden) names
 * unless the pattern itself starts with a dot.
 */
function resolveNames(all: string[], patterns: string[]): { names: string[]; missing: string[] } {
  const picked = new Set<string>();
  const missing: string[] = [];
  patterns.forEach((p, i) => {
    const exclude = p.startsWith('-') && i > 0;
    const pat = exclude ? p.slice(1) : p === '_all' ? '*' : p;
    if (!pat.includes('*')) {
      if (exclude) picked.delete(pat);
      else if (all.includes(pat)) picked.add(pat);
      else missing.push(pat);
      return;
    }
    const re = wildcard(pat);
    for (const n of all) {
      if (!re.test(n) || (n.startsWith('.') && !pat.startsWith('.'))) continue;
      if (exclude) picked.delete(n);
      else picked.add(n);
    }
  });
  return { names: all.filter((n) => picked.has(n)), missing };
}

/** `{a: {b: true}, "c.d": 1}` as Elasticsearch shows settings: nested, every leaf a string. */
function showSettings(s: Json): Json {
  const out: Json = {};
  const put = (path: string[], v: unknown) => {
    let o = out;
    for (const k of path.slice(0, -1)) o = (o[k] ??= {}) as Json;
    o[path[path.length - 1]!] = v;
  };
  const walk = (prefix: string[], v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v as Json)) walk([...prefix, ...k.split('.')], x);
    } else put(prefix, Array.isArray(v) ? v.map(String) : String(v));
  };
  walk([], s);
  return out;
}

// Date math in names: `<logs-{now/d}>`, `<snap-{now-1d/d{yyyy.MM.dd}}>`. UTC only.
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, H: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

function applyDateMath(now: number, math: string): number {
  let d = new Date(now);
  const re = /([+-])(\d+)([yMwdhHms])|\/([yMwdhHms])/g;
  for (const m of math.matchAll(re)) {
    if (m[4]) {
      const u = m[4];
      const y = d.getUTCFullYear(), mo = d.getUTCMonth(), day = d.getUTCDate(), h = d.getUTCHours(), mi = d.getUTCMinutes(), s = d.getUTCSeconds();
      if (u === 'y') d = new Date(Date.UTC(y, 0, 1));
      else if (u === 'M') d = new Date(Date.UTC(y, mo, 1));
      else if (u === 'w') d = new Date(Date.UTC(y, mo, day - ((d.getUTCDay() + 6) % 7)));
      else if (u === 'd') d = new Date(Date.UTC(y, mo, day));
      else if (u === 'h' || u === 'H') d = new Date(Date.UTC(y, mo, day, h));
      else if (u === 'm') d = new Date(Date.UTC(y, mo, day, h, mi));
      else d = new Date(Date.UTC(y, mo, day, h, mi, s));
      continue;
    }
    const n = Number(m[2]) * (m[1] === '-' ? -1 : 1);
    const u = m[3]!;
    if (u === 'y') d.setUTCFullYear(d.getUTCFullYear() + n);
    else if (u === 'M') d.setUTCMonth(d.getUTCMonth() + n);
    else d = new Date(d.getTime() + n * UNIT_MS[u]!);
  }
  return d.getTime();
}

function formatDate(ms: number, fmt: string): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const tokens: Record<string, string> = {
    yyyy: String(d.getUTCFullYear()), yy: pad(d.getUTCFullYear() % 100), MM: pad(d.getUTCMonth() + 1), dd: pad(d.getUTCDate()),
    HH: pad(d.getUTCHours()), mm: pad(d.getUTCMinutes()), ss: pad(d.getUTCSeconds()),
  };
  return fmt.replace(/yyyy|yy|MM|dd|HH|mm|ss/g, (t) => tokens[t]!);
}

export function resolveDateMathName(name: string, now: number): string {
  if (!(name.startsWith('<') && name.endsWith('>'))) return name;
  return name.slice(1, -1).replace(/\{now([^{}]*?)(?:\{([^{}|]*)(?:\|[^{}]*)?\})?\}/g, (_m, math: string, fmt?: string) => formatDate(applyDateMath(now, math), fmt || 'yyyy.MM.dd'));
}

/** Why Elasticsearch would refuse this snapshot name, or undefined. */
function snapshotNameProblem(name: string): string | undefined {
  if (name === '') return 'cannot be empty';
  if (/\s/.test(name)) return 'must not contain whitespace';
  if (name.includes(',')) return "must not contain ','";
  if (name.includes('#')) return "must not contain '#'";
  if (name.startsWith('_')) return "must not start with '_'";
  if (name.toLowerCase() !== name) return 'must be lowercase';
  if (INVALID_NAME_CHARS.some((c) => name.includes(c))) return `must not contain the following characters [${INVALID_NAME_CHARS.join(', ')}]`;
  return undefined;
}

function indexNameProblem(name: string): string | undefined {
  if (name.toLowerCase() !== name) return 'must be lowercase';
  if (/^[_\-+]/.test(name)) return "must not start with '_', '-', or '+'";
  if (INVALID_NAME_CHARS.some((c) => name.includes(c)) || name.includes('#') || name.includes(':')) return `must not contain the following characters [${[...INVALID_NAME_CHARS, '#', ':'].join(', ')}]`;
  if (name === '.' || name === '..') return "must not be '.' or '..'";
  return undefined;
}

/**
 * Next fire of a Quartz cron as Elasticsearch's `Cron` reads it (seconds first, one of
 * day-of-month/day-of-week `?`, Sunday = 1), in UTC. Throws the cause when invalid.
 */
export function quartzNext(expr: string, now: number): number {
  const f = expr.trim().toUpperCase().split(/\s+/);
  if (f.length < 6) throw new Error(`unexpected end of expression at pos [${expr.length}].`);
  if (f.length > 7) throw new Error('too many fields');
  const [sec, min, hour, dom, mon, dow] = f as [string, string, string, string, string, string];
  if ([sec, min, hour, mon].some((x) => x.includes('?'))) throw new Error("'?' can only be specified for Day-of-Month or Day-of-Week.");
  if (dom === '?' && dow === '?') throw new Error("'?' can only be specified for Day-of-Month -OR- Day-of-Week.");
  if (dom !== '?' && dow !== '?') throw new Error('support for specifying both a day-of-week AND a day-of-month parameter is not implemented.');
  // cron-parser numbers weekdays from Sunday = 0; numbers after `#` or `/` are counts, not days.
  const unixDow = dow === '?' ? '*' : dow.replace(/(^|[^#/\d])(\d+)/g, (_m, pre: string, n: string) => `${pre}${Number(n) - 1}`);
  const unixDom = dom === '?' ? '*' : dom;
  const it = CronExpressionParser.parse(`${sec} ${min} ${hour} ${unixDom} ${mon} ${unixDow}`, { currentDate: new Date(now), tz: 'UTC' });
  return it.next().getTime();
}

const ES_DURATION = /^\d+(?:d|h|m|s|ms|micros|nanos)$/;

export async function startEsDouble(opts: EsDoubleOptions = {}): Promise<EsServer> {
  const version = opts.version ?? '8.15.0';
  const now = opts.now ?? Date.now;
  const clusterUuid = uuid();
  const nodeId = uuid();
  const indices = new Map<string, IndexRec>();
  const repos = new Map<string, RepoRec>();
  const stores = new Map<string, Map<string, SnapRec>>();
  const slm = new Map<string, SlmRec>();
  const outcomes: SnapshotOutcome[] = [];
  const requests: RecordedRequest[] = [];
  const unhandled: RecordedRequest[] = [];

  const storeOf = (repo: RepoRec) => {
    let s = stores.get(repo.storeKey);
    if (!s) stores.set(repo.storeKey, (s = new Map()));
    return s;
  };
  const repoOr404 = (name: string): RepoRec => {
    const r = repos.get(name);
    if (!r) throw esError(404, 'repository_missing_exception', `[${name}] missing`);
    return r;
  };
  const indexNotFound = (name: string) =>
    esError(404, 'index_not_found_exception', `no such index [${name}]`, { 'resource.type': 'index_or_alias', 'resource.id': name, index_uuid: '_na_', index: name });

  function snapshotJson(repo: string, s: SnapRec): Json {
    const inProgress = s.state === 'IN_PROGRESS';
    const failed = s.state === 'FAILED' ? s.indices.length : s.failedIndices.length;
    const out: Json = {
      snapshot: s.name,
      uuid: s.uuid,
      repository: repo,
      version_id: versionId(version),
      version,
      indices: s.indices,
      data_streams: [],
      include_global_state: s.include_global_state,
    };
    if (s.metadata) out.metadata = s.metadata;
    out.state = s.state;
    if (s.reason) out.reason = s.reason;
    Object.assign(out, {
      start_time: iso(s.start),
      start_time_in_millis: s.start,
      end_time: iso(inProgress ? 0 : s.end),
      end_time_in_millis: inProgress ? 0 : s.end,
      duration_in_millis: (inProgress ? now() : s.end) - s.start,
      failures: (s.state === 'FAILED' ? s.indices : s.failedIndices).map((index) => ({
        index,
        index_uuid: indices.get(index)?.uuid ?? '_na_',
        shard_id: 0,
        reason: s.reason ?? 'failed by the test double',
        node_id: nodeId,
        status: 'INTERNAL_SERVER_ERROR',
      })),
      shards: inProgress ? { total: 0, failed: 0, successful: 0 } : { total: s.indices.length, failed, successful: s.indices.length - failed },
      feature_states: [],
    });
    return out;
  }

  function settle(s: SnapRec, outcome: SnapshotOutcome): void {
    s.state = outcome.state;
    s.reason = outcome.reason ?? (outcome.state === 'FAILED' ? 'snapshot failed (made to fail by the test double)' : outcome.state === 'PARTIAL' ? 'shard failed (made to fail by the test double)' : undefined);
    s.failedIndices = outcome.state === 'PARTIAL' ? (outcome.failedIndices ?? s.indices.slice(0, 1)) : [];
    if (outcome.state !== 'IN_PROGRESS') {
      s.end = Math.max(now(), s.start);
      const waiting = s.waiters.splice(0);
      for (const w of waiting) w();
    }
  }

  /** Takes a snapshot of the current indices; the queued outcome decides its state. */
  function takeSnapshot(repo: RepoRec, name: string, body: Json): SnapRec {
    const all = [...indices.keys()].sort();
    const patterns = splitList(body.indices);
    let names: string[];
    if (patterns.length === 0) names = all;
    else {
      const r = resolveNames(all, patterns);
      if (r.missing.length > 0 && body.ignore_unavailable !== true) throw indexNotFound(r.missing[0]!);
      names = r.names;
    }
    const docs: Record<string, number> = {};
    for (const n of names) docs[n] = indices.get(n)!.docs;
    const rec: SnapRec = {
      name,
      uuid: uuid(),
      state: 'IN_PROGRESS',
      indices: names,
      docs,
      failedIndices: [],
      include_global_state: body.include_global_state !== false,
      metadata: body.metadata as Json | undefined,
      start: now(),
      end: 0,
      waiters: [],
    };
    storeOf(repo).set(name, rec);
    settle(rec, outcomes.shift() ?? { state: 'SUCCESS' });
    return rec;
  }

  function checkKeys(body: Json, allowed: string[], what: string): void {
    for (const k of Object.keys(body)) {
      if (!allowed.includes(k)) throw esError(400, 'x_content_parse_exception', `[1:2] [${what}] unknown field [${k}]`);
    }
  }

  // --- handlers -----------------------------------------------------------------------------

  function info(): Json {
    return {
      name: 'es-double-node',
      cluster_name: 'bkp-es-double',
      cluster_uuid: clusterUuid,
      version: {
        number: version,
        build_flavor: 'default',
        build_type: 'docker',
        build_hash: '0000000000000000000000000000000000000000',
        build_date: '2024-08-05T10:05:34.233336849Z',
        build_snapshot: false,
        lucene_version: '9.11.1',
        minimum_wire_compatibility_version: '7.17.0',
        minimum_index_compatibility_version: '7.0.0',
      },
      tagline: 'You Know, for Search',
    };
  }

  function putRepo(name: string, body: Json): Json {
    const type = body.type;
    if (typeof type !== 'string' || type === '') throw esError(400, 'action_request_validation_exception', 'Validation Failed: 1: type is missing;');
    const settings = (body.settings ?? {}) as Json;
    const failed = (reason: string) => esError(500, 'repository_exception', `[${name}] failed to create repository`, {}, { type: 'repository_exception', reason: `[${name}] ${reason}` });
    if (!REPO_TYPES.has(type)) throw esError(500, 'repository_exception', `[${name}] repository type [${type}] does not exist`);
    let storeKey = `${type}:${JSON.stringify(settings)}`;
    if (type === 'fs') {
      const location = settings.location;
      if (typeof location !== 'string' || location === '') throw failed('missing location');
      if (opts.pathRepo) {
        if (opts.pathRepo.length === 0) throw failed(`location [${location}] doesn't match any of the locations specified by path.repo because this setting is empty`);
        const abs = location.startsWith('/') ? location : `${opts.pathRepo[0]!.replace(/\/$/, '')}/${location}`;
        if (!opts.pathRepo.some((p) => abs === p || abs.startsWith(`${p.replace(/\/$/, '')}/`))) throw failed(`location [${location}] doesn't match any of the locations specified by path.repo`);
        storeKey = `fs:${abs}`;
      } else storeKey = `fs:${location}`;
    }
    const old = repos.get(name);
    repos.set(name, { type, uuid: old?.uuid ?? uuid(), settings, storeKey });
    return { acknowledged: true };
  }

  function getRepos(names: string | undefined): Json {
    const all = [...repos.keys()].sort();
    const picked = names === undefined ? { names: all, missing: [] } : resolveNames(all, splitList(names));
    if (picked.missing.length > 0) throw esError(404, 'repository_missing_exception', `[${picked.missing[0]}] missing`);
    const out: Json = {};
    for (const n of picked.names) {
      const r = repos.get(n)!;
      out[n] = { type: r.type, uuid: r.uuid, settings: showSettings(r.settings) };
    }
    return out;
  }

  function deleteRepos(names: string): Json {
    const picked = resolveNames([...repos.keys()], splitList(names));
    if (picked.missing.length > 0) throw esError(404, 'repository_missing_exception', `[${picked.missing[0]}] missing`);
    for (const n of picked.names) repos.delete(n);
    return { acknowledged: true };
  }

  async function createSnapshot(repoName: string, rawName: string, body: Json, wait: boolean): Promise<Json> {
    const repo = repoOr404(repoName);
    const name = resolveDateMathName(rawName, now());
    const problem = snapshotNameProblem(name);
    if (problem) throw esError(400, 'invalid_snapshot_name_exception', `[${repoName}:${name}] Invalid snapshot name [${name}], ${problem}`);
    if (storeOf(repo).has(name)) throw esError(400, 'invalid_snapshot_name_exception', `[${repoName}:${name}] Invalid snapshot name [${name}], snapshot with the same name already exists`);
    checkKeys(body, ['indices', 'include_global_state', 'metadata', 'partial', 'ignore_unavailable', 'expand_wildcards', 'feature_states'], 'create_snapshot');
    if (body.metadata !== undefined) {
      if (body.metadata === null || typeof body.metadata !== 'object' || Array.isArray(body.metadata)) throw esError(400, 'action_request_validation_exception', 'Validation Failed: 1: metadata must be an object;');
      const size = Buffer.byteLength(JSON.stringify(body.metadata));
      if (size > 1024) throw esError(400, 'action_request_validation_exception', `Validation Failed: 1: metadata must be smaller than 1024 bytes, but was [${size}];`);
    }
    const rec = takeSnapshot(repo, name, body);
    if (!wait) return { accepted: true };
    if (rec.state === 'IN_PROGRESS') await new Promise<void>((r) => rec.waiters.push(r));
    return { snapshot: snapshotJson(repoName, rec) };
  }

  function getSnapshots(repoName: string, names: string, q: URLSearchParams): Json {
    const repo = repoOr404(repoName);
    const store = storeOf(repo);
    const all = [...store.keys()];
    let list: SnapRec[];
    if (names === '_current') list = [...store.values()].filter((s) => s.state === 'IN_PROGRESS');
    else {
      const r = resolveNames(all, splitList(names));
      if (r.missing.length > 0 && q.get('ignore_unavailable') !== 'true') throw esError(404, 'snapshot_missing_exception', `[${repoName}:${r.missing[0]}] is missing`);
      list = r.names.map((n) => store.get(n)!);
    }
    const byName = (a: SnapRec, b: SnapRec) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    list.sort(q.get('sort') === 'name' ? byName : (a, b) => a.start - b.start || byName(a, b));
    if (q.get('order') === 'desc') list.reverse();
    const size = Number(q.get('size') ?? 0);
    const shown = size > 0 ? list.slice(0, size) : list;
    const out: Json = { snapshots: shown.map((s) => snapshotJson(repoName, s)), total: list.length, remaining: list.length - shown.length };
    if (shown.length < list.length) out.next = Buffer.from(`${shown[shown.length - 1]!.name},${repoName},${shown[shown.length - 1]!.name}`).toString('base64url');
    return out;
  }

  function deleteSnapshots(repoName: string, names: string): Json {
    const repo = repoOr404(repoName);
    const store = storeOf(repo);
    const r = resolveNames([...store.keys()], splitList(names));
    if (r.missing.length > 0) throw esError(404, 'snapshot_missing_exception', `[${repoName}:${r.missing[0]}] is missing`);
    for (const n of r.names) {
      const s = store.get(n)!;
      // Deleting a running snapshot aborts it; whoever waited for it hears it failed.
      if (s.state === 'IN_PROGRESS') settle(s, { state: 'FAILED', reason: 'Snapshot was aborted by deletion' });
      store.delete(n);
    }
    return { acknowledged: true };
  }

  function restore(repoName: string, snapName: string, body: Json, wait: boolean): Json {
    const repo = repoOr404(repoName);
    const s = storeOf(repo).get(snapName);
    if (!s || s.state === 'IN_PROGRESS') throw esError(404, 'snapshot_missing_exception', `[${repoName}:${snapName}] is missing`);
    const head = `[${repoName}:${snapName}/${s.uuid}]`;
    const refuse = (reason: string) => esError(500, 'snapshot_restore_exception', `${head} ${reason}`);
    if (s.state === 'FAILED') throw refuse('unsupported snapshot state [FAILED]');
    checkKeys(body, ['indices', 'rename_pattern', 'rename_replacement', 'include_global_state', 'include_aliases', 'partial', 'ignore_unavailable', 'index_settings', 'ignore_index_settings', 'feature_states', 'expand_wildcards'], 'restore_snapshot');
    const patterns = splitList(body.indices);
    let selected = s.indices;
    if (patterns.length > 0) {
      const r = resolveNames(s.indices, patterns);
      if (r.missing.length > 0 && body.ignore_unavailable !== true) throw indexNotFound(r.missing[0]!);
      selected = r.names;
    }
    for (const i of selected) if (s.failedIndices.includes(i) && body.partial !== true) throw refuse(`index [${i}] wasn't fully snapshotted - cannot restore`);
    const renamed = new Map<string, string>();
    for (const i of selected) {
      const target = typeof body.rename_pattern === 'string' ? i.replace(new RegExp(body.rename_pattern, 'g'), String(body.rename_replacement ?? '')) : i;
      const clash = [...renamed.entries()].find(([, t]) => t === target);
      if (clash) throw refuse(`indices [${i}] and [${clash[0]}] are renamed into the same index [${target}]`);
      const problem = indexNameProblem(target);
      if (problem) throw esError(400, 'invalid_index_name_exception', `Invalid index name [${target}], ${problem}`, { index_uuid: '_na_', index: target });
      renamed.set(i, target);
    }
    for (const target of renamed.values()) {
      if (indices.get(target)?.open) {
        throw refuse(`cannot restore index [${target}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name`);
      }
    }
    for (const [src, target] of renamed) {
      const old = indices.get(target);
      indices.set(target, { uuid: old?.uuid ?? uuid(), open: true, docs: s.docs[src] ?? 0, created: old?.created ?? now() });
    }
    if (!wait) return { accepted: true };
    const restored = [...renamed.values()];
    return { snapshot: { snapshot: s.name, indices: restored, shards: { total: restored.length, failed: 0, successful: restored.length } } };
  }

  function slmItem(id: string, p: SlmRec, human: boolean): Json {
    const policy: Json = { name: p.policy.name, schedule: p.policy.schedule, repository: p.policy.repository };
    if (p.policy.config) policy.config = p.policy.config;
    if (p.policy.retention) policy.retention = p.policy.retention;
    const out: Json = { version: p.version };
    if (human) out.modified_date = iso(p.modified);
    out.modified_date_millis = p.modified;
    out.policy = policy;
    const inv = (i: Invocation): Json => ({ ...i, ...(human ? { time_string: iso(i.time) } : {}) });
    if (p.lastSuccess) out.last_success = inv(p.lastSuccess);
    if (p.lastFailure) out.last_failure = inv(p.lastFailure);
    const next = quartzNext(p.policy.schedule, now());
    if (human) out.next_execution = iso(next);
    out.next_execution_millis = next;
    const running = [...repos.values()].flatMap((r) => [...storeOf(r).values()]).find((s) => s.state === 'IN_PROGRESS' && s.metadata?.policy === id);
    if (running) out.in_progress = { name: running.name, uuid: running.uuid, state: 'STARTED', start_time_millis: running.start };
    out.stats = { policy: id, ...p.stats };
    return out;
  }

  function putSlm(id: string, body: Json): Json {
    checkKeys(body, ['schedule', 'name', 'repository', 'config', 'retention'], 'snapshot_lifecycle');
    const missing = ['schedule', 'name', 'repository'].filter((k) => typeof body[k] !== 'string');
    if (missing.length > 0) throw esError(400, 'x_content_parse_exception', `[1:2] Required [${missing.join(', ')}]`);
    const { schedule, name, repository } = body as { schedule: string; name: string; repository: string };
    const problems: string[] = [];
    if (id.startsWith('_')) problems.push(`invalid policy id [${id}]: must not start with '_'`);
    if (INVALID_NAME_CHARS.some((c) => id.includes(c))) problems.push(`invalid policy id [${id}]: must not contain the following characters [${INVALID_NAME_CHARS.join(', ')}]`);
    const generated = resolveDateMathName(name, now());
    const nameProblem = snapshotNameProblem(generated);
    if (nameProblem) problems.push(`invalid snapshot name [${name}]: ${nameProblem}`);
    if (schedule.trim() === '') problems.push(`invalid schedule [${schedule}]: must not be empty`);
    else {
      try {
        quartzNext(schedule, now());
      } catch {
        problems.push(`invalid schedule: invalid cron expression [${schedule}]`);
      }
    }
    const config = body.config as Json | undefined;
    const metadata = config?.metadata;
    if (metadata !== undefined && (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))) problems.push(`invalid configuration.metadata [${String(metadata)}]: must be an object if present`);
    else if (metadata && 'policy' in (metadata as Json)) problems.push('invalid configuration.metadata: field name [policy] is reserved and will be added automatically');
    if (repository === '') problems.push('invalid repository name []: cannot be empty');
    if (problems.length > 0) throw esError(400, 'action_request_validation_exception', `Validation Failed: ${problems.map((p, i) => `${i + 1}: ${p};`).join('')}`);
    const retention = body.retention as Json | undefined;
    if (retention) {
      checkKeys(retention, ['expire_after', 'min_count', 'max_count'], 'retention');
      if (retention.expire_after !== undefined && !ES_DURATION.test(String(retention.expire_after))) {
        throw esError(400, 'x_content_parse_exception', '[1:2] [retention] failed to parse field [expire_after]', {}, {
          type: 'illegal_argument_exception',
          reason: `failed to parse setting [expire_after] with value [${String(retention.expire_after)}] as a time value: unit is missing or unrecognized`,
        });
      }
      const min = retention.min_count as number | undefined;
      const max = retention.max_count as number | undefined;
      if (min !== undefined && min < 1) throw esError(400, 'illegal_argument_exception', `minimum snapshot count must be at least 1, but was: ${min}`);
      if (max !== undefined && max < 1) throw esError(400, 'illegal_argument_exception', `maximum snapshot count must be at least 1, but was: ${max}`);
      if (min !== undefined && max !== undefined && min > max) throw esError(400, 'illegal_argument_exception', `minimum snapshot count ${min} cannot be larger than maximum snapshot count ${max}`);
    }
    if (!repos.has(repository)) throw esError(400, 'illegal_argument_exception', `no such repository [${repository}]`);
    const old = slm.get(id);
    slm.set(id, {
      policy: { name, schedule, repository, config, retention },
      version: (old?.version ?? 0) + 1,
      modified: now(),
      lastSuccess: old?.lastSuccess,
      lastFailure: old?.lastFailure,
      stats: old?.stats ?? { snapshots_taken: 0, snapshots_failed: 0, snapshots_deleted: 0, snapshot_deletion_failures: 0 },
    });
    return { acknowledged: true };
  }

  function getSlm(ids: string | undefined, human: boolean): Json {
    const out: Json = {};
    if (ids === undefined) {
      for (const [id, p] of slm) out[id] = slmItem(id, p, human);
      return out;
    }
    const wanted = splitList(ids);
    for (const id of wanted) {
      const p = slm.get(id);
      if (p) out[id] = slmItem(id, p, human);
    }
    if (Object.keys(out).length === 0) {
      throw esError(404, 'resource_not_found_exception', `snapshot lifecycle policy or policies [${wanted.join(', ')}] not found${slm.size === 0 ? ', no policies are configured' : ''}`);
    }
    return out;
  }

  function executeSlm(id: string): Json {
    const p = slm.get(id);
    if (!p) throw esError(400, 'illegal_argument_exception', `no such snapshot lifecycle policy [${id}]`);
    const started = now();
    const name = `${resolveDateMathName(p.policy.name, started)}-${randomBytes(16).toString('base64url').slice(0, 22).toLowerCase()}`;
    const repo = repos.get(p.policy.repository);
    const fail = (details: string) => {
      p.lastFailure = { snapshot_name: name, start_time: started, time: now(), details };
      p.stats.snapshots_failed++;
    };
    if (!repo) {
      // SLM answers with the name and records the failure: the snapshot runs in the background.
      fail(JSON.stringify({ type: 'repository_missing_exception', reason: `[${p.policy.repository}] missing` }));
      return { snapshot_name: name };
    }
    const config = p.policy.config ?? {};
    const rec = takeSnapshot(repo, name, { ...config, metadata: { ...((config.metadata as Json | undefined) ?? {}), policy: id } });
    const record = () => {
      if (rec.state === 'SUCCESS') {
        p.lastSuccess = { snapshot_name: name, start_time: started, time: now() };
        p.stats.snapshots_taken++;
      } else fail(JSON.stringify({ type: 'snapshot_exception', reason: `[${p.policy.repository}:${name}] ${rec.state}: ${rec.reason ?? ''}` }));
    };
    if (rec.state === 'IN_PROGRESS') rec.waiters.push(record);
    else record();
    return { snapshot_name: name };
  }

  function catIndices(patterns: string | undefined, q: URLSearchParams, acceptJson: boolean): Json[] | string {
    const all = [...indices.keys()].sort();
    let names = all;
    if (patterns !== undefined) {
      const r = resolveNames(all, splitList(patterns));
      if (r.missing.length > 0) throw indexNotFound(r.missing[0]!);
      names = r.names;
    }
    const rows = names.map((n) => {
      const i = indices.get(n)!;
      const size = i.open ? `${Math.max(1, i.docs) * 120}b` : null;
      return {
        health: 'green', status: i.open ? 'open' : 'close', index: n, uuid: i.uuid, pri: '1', rep: '0',
        'docs.count': i.open ? String(i.docs) : null, 'docs.deleted': i.open ? '0' : null,
        'store.size': size, 'pri.store.size': size, 'dataset.size': size,
      } as Record<string, string | null>;
    });
    const h = q.get('h');
    const cols = h ? h.split(',') : Object.keys(rows[0] ?? { health: 0, status: 0, index: 0, uuid: 0, pri: 0, rep: 0, 'docs.count': 0, 'docs.deleted': 0, 'store.size': 0, 'pri.store.size': 0, 'dataset.size': 0 });
    const picked = rows.map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? null])));
    const format = q.get('format');
    if (format === 'json' || (format === null && acceptJson)) return picked;
    return picked.map((r) => cols.map((c) => r[c] ?? '').join(' ')).join('\n') + (picked.length ? '\n' : '');
  }

  function indexJson(n: string): Json {
    const i = indices.get(n)!;
    const settings: Json = { number_of_shards: '1', number_of_replicas: '0', uuid: i.uuid, provided_name: n, creation_date: String(i.created), version: { created: '8512000' } };
    if (!i.open) settings.verified_before_close = 'true';
    return { aliases: {}, mappings: {}, settings: { index: settings } };
  }

  // --- routing ------------------------------------------------------------------------------

  async function route(method: string, seg: string[], q: URLSearchParams, body: Json, acceptJson: boolean, rawPath: string): Promise<Json | Json[] | string | undefined> {
    const bool = (k: string, dflt: boolean) => (q.has(k) ? q.get(k) !== 'false' : dflt);
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw plainError(405, `Incorrect HTTP method for uri [${rawPath}] and method [${method}], allowed: [${methods.join(', ')}]`);
    };
    const [a, b, c, d] = seg;
    if (seg.length === 0) {
      allow('GET', 'HEAD');
      return info();
    }
    if (a === '_snapshot') {
      if (seg.length === 1) {
        allow('GET');
        return getRepos(undefined);
      }
      if (seg.length === 2) {
        if (method === 'PUT' || method === 'POST') return putRepo(b!, body);
        if (method === 'GET') return getRepos(b === '_all' || b === '*' ? undefined : b);
        if (method === 'DELETE') return deleteRepos(b!);
        allow('GET', 'PUT', 'POST', 'DELETE');
      }
      if (seg.length === 3 && c === '_verify') {
        allow('POST');
        repoOr404(b!);
        return { nodes: { [nodeId]: { name: 'es-double-node' } } };
      }
      if (seg.length === 3) {
        if (method === 'PUT' || method === 'POST') return createSnapshot(b!, c!, body, bool('wait_for_completion', false));
        if (method === 'GET') return getSnapshots(b!, c!, q);
        if (method === 'DELETE') return deleteSnapshots(b!, c!);
        allow('GET', 'PUT', 'POST', 'DELETE');
      }
      if (seg.length === 4 && d === '_restore') {
        allow('POST');
        return restore(b!, c!, body, bool('wait_for_completion', false));
      }
    }
    if (a === '_slm' && b === 'policy') {
      if (seg.length === 2) {
        allow('GET');
        return getSlm(undefined, bool('human', false));
      }
      if (seg.length === 3) {
        if (method === 'PUT') return putSlm(c!, body);
        if (method === 'GET') return getSlm(c!, bool('human', false));
        if (method === 'DELETE') {
          if (!slm.delete(c!)) throw esError(404, 'resource_not_found_exception', `snapshot lifecycle policy not found: ${c}`);
          return { acknowledged: true };
        }
        allow('GET', 'PUT', 'DELETE');
      }
      if (seg.length === 4 && d === '_execute') {
        allow('PUT', 'POST');
        return executeSlm(c!);
      }
    }
    if (a === '_cat' && b === 'indices' && seg.length <= 3) {
      allow('GET');
      return catIndices(c, q, acceptJson);
    }
    if (a !== undefined && !a.startsWith('_')) {
      const all = [...indices.keys()].sort();
      if (seg.length === 1) {
        if (method === 'PUT') {
          const problem = indexNameProblem(a);
          if (problem) throw esError(400, 'invalid_index_name_exception', `Invalid index name [${a}], ${problem}`, { index_uuid: '_na_', index: a });
          const old = indices.get(a);
          if (old) throw esError(400, 'resource_already_exists_exception', `index [${a}/${old.uuid}] already exists`, { index_uuid: old.uuid, index: a });
          indices.set(a, { uuid: uuid(), open: true, docs: 0, created: now() });
          return { acknowledged: true, shards_acknowledged: true, index: a };
        }
        if (method === 'GET' || method === 'HEAD') {
          const r = resolveNames(all, splitList(a));
          if (r.missing.length > 0) throw indexNotFound(r.missing[0]!);
          return Object.fromEntries(r.names.map((n) => [n, indexJson(n)]));
        }
        if (method === 'DELETE') {
          if (a.includes('*') || a === '_all') throw esError(400, 'illegal_argument_exception', 'Wildcard expressions or all indices are not allowed');
          const r = resolveNames(all, splitList(a));
          if (r.missing.length > 0) throw indexNotFound(r.missing[0]!);
          for (const n of r.names) indices.delete(n);
          return { acknowledged: true };
        }
        allow('GET', 'HEAD', 'PUT', 'DELETE');
      }
      if (seg.length === 2 && (b === '_close' || b === '_open')) {
        allow('POST');
        const r = resolveNames(all, splitList(a));
        if (r.missing.length > 0) throw indexNotFound(r.missing[0]!);
        for (const n of r.names) indices.get(n)!.open = b === '_open';
        return b === '_close'
          ? { acknowledged: true, shards_acknowledged: true, indices: Object.fromEntries(r.names.map((n) => [n, { closed: true }])) }
          : { acknowledged: true, shards_acknowledged: true };
      }
      if (seg.length === 2 && b === '_bulk') {
        // Documents are only counted: enough for a real-cluster helper to seed through the API.
        allow('POST', 'PUT');
        const lines = String(body.ndjson ?? '').split('\n').filter((l) => l.trim() !== '');
        const items: Json[] = [];
        for (let i = 0; i < lines.length; i++) {
          const action = JSON.parse(lines[i]!) as Json;
          const op = Object.keys(action)[0]!;
          if (op !== 'delete') i++;
          let idx = indices.get(a);
          if (!idx) indices.set(a, (idx = { uuid: uuid(), open: true, docs: 0, created: now() }));
          if (op === 'index' || op === 'create') idx.docs++;
          items.push({ [op]: { _index: a, _id: uuid(), _version: 1, result: 'created', _shards: { total: 1, successful: 1, failed: 0 }, _seq_no: idx.docs - 1, _primary_term: 1, status: 201 } });
        }
        return { errors: false, took: 1, items };
      }
      if (seg.length === 2 && b === '_count') {
        allow('GET', 'POST');
        const r = resolveNames(all, splitList(a));
        if (r.missing.length > 0) throw indexNotFound(r.missing[0]!);
        const closed = r.names.find((n) => !indices.get(n)!.open);
        if (closed) throw esError(400, 'index_closed_exception', 'closed', { index_uuid: indices.get(closed)!.uuid, index: closed });
        return { count: r.names.reduce((n, x) => n + indices.get(x)!.docs, 0), _shards: { total: r.names.length, successful: r.names.length, skipped: 0, failed: 0 } };
      }
    }
    throw Object.assign(plainError(400, `no handler found for uri [${rawPath}] and method [${method}]`), { unhandled: true });
  }

  // --- HTTP ---------------------------------------------------------------------------------

  /** The REST-compatibility check of RestCompatibleVersionHelper, as an 8.x node runs it. */
  function compatProblem(accept: string | undefined, contentType: string | undefined, hasContent: boolean): string | undefined {
    const major = Number(version.split('.')[0]);
    const ver = (h: string | undefined) => {
      const m = h ? /compatible-with\s*=\s*(\d+)/i.exec(h) : null;
      return m ? Number(m[1]) : undefined;
    };
    const aV = ver(accept);
    const cV = ver(contentType);
    const acceptVersion = aV ?? major;
    const contentVersion = cV ?? major;
    if (acceptVersion > major || acceptVersion < major - 1) return `Accept version must be either version ${major} or ${major - 1}, but found ${acceptVersion}. Accept=${accept}`;
    if (hasContent) {
      if (contentVersion > major || contentVersion < major - 1) return `Content-Type version must be either version ${major} or ${major - 1}, but found ${contentVersion}. Content-Type=${contentType}`;
      if (contentVersion !== acceptVersion) return `A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match. Accept=${accept}, Content-Type=${contentType}`;
      if ((cV === undefined) !== (aV === undefined)) return `A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version. Accept=${accept}, Content-Type=${contentType}`;
    }
    return undefined;
  }

  function authProblem(req: http.IncomingMessage): EsHttpError | undefined {
    if (!opts.auth && opts.apiKey === undefined) return undefined;
    const uri = req.url ?? '/';
    const deny = (reason: string, extra: Json = {}) => {
      const e = esError(401, 'security_exception', reason, { ...extra, header: { 'WWW-Authenticate': WWW_AUTHENTICATE } });
      return new EsHttpError(401, e.body, { 'WWW-Authenticate': WWW_AUTHENTICATE });
    };
    const h = req.headers.authorization;
    if (!h) return deny(`missing authentication credentials for REST request [${uri}]`);
    if (h.startsWith('Basic ')) {
      const text = Buffer.from(h.slice(6), 'base64').toString('utf8');
      const colon = text.indexOf(':');
      const user = colon < 0 ? text : text.slice(0, colon);
      const pass = colon < 0 ? '' : text.slice(colon + 1);
      if (opts.auth && user === opts.auth.username && pass === opts.auth.password) return undefined;
      return deny(`unable to authenticate user [${user}] for REST request [${uri}]`);
    }
    if (h.startsWith('ApiKey ')) {
      const key = h.slice(7);
      if (opts.apiKey !== undefined && key === opts.apiKey) return undefined;
      const id = Buffer.from(key, 'base64').toString('utf8').split(':')[0] ?? '';
      return deny('unable to authenticate with provided credentials and anonymous access is not allowed for this request', { additional_unsuccessful_credentials: `API key: unable to find apikey with id ${id}` });
    }
    return deny('unable to authenticate with provided credentials and anonymous access is not allowed for this request');
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks));
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://double');
    const text = raw.toString('utf8');
    let parsed: unknown;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    const rec: RecordedRequest = { method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body: parsed, status: 0 };
    requests.push(rec);
    const accept = req.headers.accept;
    const contentType = req.headers['content-type'];
    const compat = accept && /compatible-with\s*=\s*(\d+)/i.exec(accept);
    const send = (status: number, payload: unknown, headers: Record<string, string | string[]> = {}) => {
      rec.status = status;
      const isText = typeof payload === 'string';
      const out = payload === undefined ? '' : isText ? payload : JSON.stringify(payload);
      res.writeHead(status, {
        'X-elastic-product': 'Elasticsearch',
        'content-type': isText ? 'text/plain; charset=UTF-8' : compat ? `application/vnd.elasticsearch+json;compatible-with=${compat[1]}` : 'application/json',
        'content-length': Buffer.byteLength(out),
        ...headers,
      });
      res.end(method === 'HEAD' ? undefined : out);
    };
    try {
      const problem = compatProblem(accept, contentType, raw.length > 0);
      if (problem) {
        throw esError(400, 'media_type_header_exception', 'Invalid media-type value on headers [Accept, Content-Type]', {}, { type: 'status_exception', reason: problem });
      }
      if (raw.length > 0) {
        if (!contentType) throw plainError(406, 'Content-Type header is missing');
        if (!/json/i.test(contentType)) throw plainError(406, `Content-Type header [${contentType}] is not supported`);
        if (!url.pathname.endsWith('/_bulk') && (typeof parsed !== 'object' || parsed === null)) {
          throw esError(400, 'x_content_parse_exception', '[1:1] Unexpected character: not a JSON object', {}, { type: 'json_parse_exception', reason: `Unexpected character in ${text.slice(0, 40)}` });
        }
      }
      const denied = authProblem(req);
      if (denied) throw denied;
      const seg = url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
      const acceptJson = /json/i.test(accept ?? '');
      const body = url.pathname.endsWith('/_bulk') ? { ndjson: text } : ((parsed ?? {}) as Json);
      const out = await route(method, seg, url.searchParams, body, acceptJson, `${url.pathname}${url.search}`);
      send(200, out);
    } catch (err) {
      if (err instanceof EsHttpError) {
        if ((err as EsHttpError & { unhandled?: boolean }).unhandled) unhandled.push(rec);
        send(err.status, err.body, err.headers);
        return;
      }
      send(500, { error: { root_cause: [{ type: 'exception', reason: String(err) }], type: 'exception', reason: `test double bug: ${String(err)}` }, status: 500 });
    }
  }

  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
      lastError = undefined;
      break;
    } catch (err) {
      // A port taken between freePort() and listen(): try another.
      lastError = err;
    }
  }
  if (lastError !== undefined) throw lastError;
  const { port } = server.address() as { port: number };

  const findSnap = (repo: string, name: string): SnapRec => {
    const r = repos.get(repo);
    const s = r ? storeOf(r).get(name) : undefined;
    if (!s) throw new Error(`es double: no snapshot ${repo}/${name}`);
    return s;
  };

  const controls: EsDoubleControls = {
    requests,
    unhandled,
    clearRequests() {
      requests.length = 0;
      unhandled.length = 0;
    },
    nextSnapshot(outcome) {
      outcomes.push(outcome);
    },
    finishSnapshot(repo, name, state = 'SUCCESS', reason) {
      settle(findSnap(repo, name), { state, reason });
    },
    setSnapshotState(repo, name, state, reason) {
      settle(findSnap(repo, name), { state, reason });
    },
    snapshot(repo, name) {
      const r = repos.get(repo);
      const s = r ? storeOf(r).get(name) : undefined;
      if (!s) return undefined;
      return { name: s.name, uuid: s.uuid, state: s.state, indices: [...s.indices], metadata: { ...(s.metadata ?? {}) }, include_global_state: s.include_global_state, docs: { ...s.docs } };
    },
    index(name) {
      const i = indices.get(name);
      return i ? { open: i.open, docs: i.docs } : undefined;
    },
  };

  let stopped = false;
  return {
    url: `http://127.0.0.1:${port}`,
    real: false,
    double: controls,
    prefix: '',
    repoLocation: (name) => name,
    async seedIndex(name, docs) {
      const old = indices.get(name);
      indices.set(name, { uuid: old?.uuid ?? uuid(), open: true, docs, created: old?.created ?? now() });
    },
    async closeIndex(name) {
      const i = indices.get(name);
      if (!i) throw new Error(`es double: no index ${name}`);
      i.open = false;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A real cluster (BKP_TEST_ES_URL)

async function connectReal(raw: string): Promise<EsServer> {
  const base = new URL(raw);
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  // fetch refuses URLs with credentials: they travel as a header.
  if (base.username) headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`;
  const origin = new URL(base.href);
  origin.username = '';
  origin.password = '';
  const prefix = `bkp-test-${randomBytes(3).toString('hex')}-`;

  async function call(method: string, path: string, body?: string, contentType?: string): Promise<{ status: number; json: unknown }> {
    const res = await fetch(new URL(path.replace(/^\//, ''), origin.href.endsWith('/') ? origin.href : `${origin.href}/`), {
      method,
      headers: contentType ? { ...headers, 'content-type': contentType } : headers,
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, json };
  }
  async function must(method: string, path: string, body?: string, contentType?: string): Promise<unknown> {
    const r = await call(method, path, body, contentType);
    if (r.status >= 300) throw new Error(`${method} ${path} on ${base.host}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }

  const ping = await call('GET', '/');
  if (ping.status !== 200) throw new Error(`BKP_TEST_ES_URL (${base.host}) answered GET / with HTTP ${ping.status}: ${JSON.stringify(ping.json)}`);

  return {
    url: base.href.replace(/\/$/, ''),
    real: true,
    double: undefined,
    prefix,
    repoLocation: (name) => `${prefix}${name}`,
    async seedIndex(name, docs) {
      await call('DELETE', `/${encodeURIComponent(name)}`);
      await must('PUT', `/${encodeURIComponent(name)}`, JSON.stringify({ settings: { number_of_shards: 1, number_of_replicas: 0 } }));
      if (docs > 0) {
        const lines = Array.from({ length: docs }, (_, i) => `{"index":{}}\n{"n":${i}}\n`).join('');
        await must('POST', `/${encodeURIComponent(name)}/_bulk?refresh=true`, lines, 'application/x-ndjson');
      }
    },
    async closeIndex(name) {
      await must('POST', `/${encodeURIComponent(name)}/_close`);
    },
    async stop() {
      // Concrete names only: clusters refuse wildcard deletes by default (action.destructive_requires_name).
      const rows = await call('GET', `/_cat/indices/${encodeURIComponent(`${prefix}*`)}?format=json&h=index&expand_wildcards=all`);
      const names = Array.isArray(rows.json) ? (rows.json as { index: string }[]).map((r) => r.index) : [];
      for (const n of names) await call('DELETE', `/${encodeURIComponent(n)}`);
    },
  };
}
