import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';
import { registerSecret } from '../../core/secrets.js';

/** Credentials for the cluster: an API key (the encoded form Kibana shows), or a user and password. */
export type EsAuth = { apiKey: string } | { username: string; password: string };

/** The snapshot repository bkp registers and snapshots into (a declared resource, DESIGN §6). */
export interface EsRepositorySpec {
  name: string;
  /** `fs` unless the policy says otherwise. */
  type: string;
  settings: Record<string, unknown>;
}

/** An elasticsearch target's settings, typed. */
export interface EsSettings {
  /** The node URL without credentials: what the client connects to. */
  node: string;
  /** The node URL for messages: a password in it shown as `***`. */
  displayNode: string;
  auth?: EsAuth;
  snapshotRepository: EsRepositorySpec;
  /** `managed`: bkp takes and prunes snapshots; `slm`: an SLM policy on the cluster does. */
  mode: 'managed' | 'slm';
  /** Index patterns to snapshot, or `all` (the request then leaves `indices` out). */
  indices: string[] | 'all';
  includeGlobalState: boolean;
  /** Bound on a snapshot or restore that waits for completion. */
  snapshotTimeoutMs: number;
  /** Bound on every other request. */
  requestTimeoutMs: number;
}

interface RawSettings {
  node?: unknown;
  auth?: { api_key?: string; username?: string; password?: string };
  snapshot_repository?: { name?: string; type?: string; settings?: Record<string, unknown> };
  mode?: string;
  indices?: unknown;
  include_global_state?: boolean;
  snapshot_timeout?: string;
}

export const DEFAULT_SNAPSHOT_TIMEOUT = '1h';
export const REQUEST_TIMEOUT_MS = 30_000;

/** `30s`, `5m`, `1h30m` (the schema's hook_duration) in milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (!m || text.trim() === '') throw new UserError(`${what}: "${text}" is not a duration like 30s, 5m or 1h`);
  const ms = ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
  if (ms === 0) throw new UserError(`${what}: must be longer than 0s`);
  return ms;
}

/** The URL with its password replaced by `***` (the user name stays: it helps and is not secret). */
export function maskNode(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password !== '') copy.password = '***';
  // `https://es:9200`, as people write it, unless the node sits under a path.
  return copy.pathname === '/' && copy.search === '' && copy.hash === '' ? copy.href.slice(0, -1) : copy.href;
}

export function esSettings(target: Pick<Target, 'name' | 'settings'>): EsSettings {
  const s = target.settings as RawSettings;
  const head = `target ${target.name}`;
  if (typeof s.node !== 'string' || s.node.trim() === '') throw new UserError(`${head}: node must be the cluster URL, e.g. https://es.example.org:9200`);
  let url: URL;
  try {
    url = new URL(s.node.trim());
  } catch {
    // The raw value may hold a password: say what is wrong without echoing it.
    throw new UserError(`${head}: node is not a URL; write it as http(s)://host:9200`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`${head}: node ${maskNode(url)} must be an http:// or https:// URL`);

  const fromUrl = url.username !== '' ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } : undefined;
  const displayNode = maskNode(url);
  url.username = '';
  url.password = '';

  let auth: EsAuth | undefined;
  if (s.auth && (s.auth.api_key !== undefined || s.auth.username !== undefined || s.auth.password !== undefined)) {
    if (fromUrl) throw new UserError(`${head}: credentials are given both in node (${displayNode}) and in auth; keep one`);
    if (s.auth.api_key !== undefined && (s.auth.username !== undefined || s.auth.password !== undefined)) {
      throw new UserError(`${head}: auth takes an api_key or a username and password, not both`);
    }
    if (s.auth.api_key !== undefined) auth = { apiKey: s.auth.api_key };
    else if (s.auth.username !== undefined && s.auth.password !== undefined) auth = { username: s.auth.username, password: s.auth.password };
    else throw new UserError(`${head}: auth needs both username and password`);
  } else if (fromUrl) {
    auth = fromUrl;
  }
  // Interpolated values are registered already; a literal one in the file is as secret.
  if (auth && 'apiKey' in auth) registerSecret(auth.apiKey);
  if (auth && 'password' in auth) registerSecret(auth.password);

  const repo = s.snapshot_repository;
  if (!repo || typeof repo.name !== 'string' || repo.name === '') throw new UserError(`${head}: snapshot_repository needs a name`);

  let indices: string[] | 'all' = 'all';
  if (typeof s.indices === 'string') indices = splitIndices(s.indices);
  else if (Array.isArray(s.indices)) indices = s.indices.filter((i): i is string => typeof i === 'string').flatMap(splitIndices);
  if (Array.isArray(indices) && indices.length === 0) indices = 'all';

  return {
    node: url.href,
    displayNode,
    auth,
    snapshotRepository: { name: repo.name, type: repo.type ?? 'fs', settings: repo.settings ?? {} },
    mode: s.mode === 'slm' ? 'slm' : 'managed',
    indices,
    // Restoring a cluster's global state overwrites its settings, templates and security
    // index; bkp snapshots data unless the policy asks for more.
    includeGlobalState: s.include_global_state === true,
    snapshotTimeoutMs: parseDuration(s.snapshot_timeout ?? DEFAULT_SNAPSHOT_TIMEOUT, `${head}: snapshot_timeout`),
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  };
}

/** `"logs-*,-logs-old"` as Elasticsearch reads it: a comma list, blanks dropped. */
function splitIndices(text: string): string[] {
  return text.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}
