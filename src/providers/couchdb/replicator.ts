import nano from 'nano';
import type { Target } from '../../policy/types.js';
import type { DesiredResource, ObservedResource, ResourceAction, ResourceState, ResourceValue } from '../../planner/types.js';
import type { ActionOutput } from '../../apply/events.js';
import type { ProviderContext } from '../types.js';
import { specDigest } from '../../planner/resources/digest.js';
import { splitCredentials } from '../../core/url-credentials.js';
import { redact } from '../../core/secrets.js';

/**
 * Replication tasks as declared resources (issue 4, seed 000): one document per database in the
 * source server's `_replicator` database, marked as bkp's. Works with Apache CouchDB ≥ 2.1 (state
 * from `_scheduler/docs`), older CouchDB and PouchDB Server (state from the document's own
 * `_replication_state*` fields).
 */

const REPLICATOR = '_replicator';
const SENSITIVE = ['source_auth', 'target_auth'];

/** bkp's mark in the documents it writes (DESIGN §4): only these are ever changed or deleted. */
interface BkpMark {
  managed_by: 'bkp';
  target: string;
  unit?: string;
  /** Digest of the fields bkp wrote: a mismatch later means the document was edited by hand. */
  spec_digest: string;
}

type Endpoint = string | { url: string; auth?: { basic?: { username: string; password: string } }; headers?: Record<string, string> };

interface ReplicationDoc {
  _id: string;
  _rev?: string;
  _deleted?: boolean;
  source?: Endpoint;
  target?: Endpoint;
  create_target?: boolean;
  continuous?: boolean;
  bkp?: BkpMark;
  _replication_state?: string;
  _replication_state_time?: string | number;
  _replication_state_reason?: string;
  _replication_stats?: { docs_written?: number };
}

/** A row of CouchDB's `_scheduler/docs` (2.1+). */
interface SchedulerDoc {
  doc_id: string;
  state: string;
  info?: { error?: string; docs_written?: number } | null;
  last_updated?: string;
  error_count?: number;
}

interface CouchError extends Error {
  statusCode?: number;
  reason?: string;
  error?: string;
}

function server(target: Target): nano.ServerScope {
  const url = (target.settings as { url: string }).url;
  return nano(url);
}

/** `couchdb https://src.example.org: 401 unauthorized (…)`, credentials masked. */
function describeError(target: Target, what: string, err: unknown): Error {
  const e = err as CouchError;
  const where = splitCredentials((target.settings as { url: string }).url).url;
  const status = e.statusCode ? `${e.statusCode} ${e.error ?? ''}`.trim() : (e.message || String(err));
  const reason = e.reason && e.reason !== e.error ? `: ${e.reason}` : '';
  return new Error(redact(`couchdb ${where}: ${what}: ${status}${reason}`));
}

export async function observeReplications(target: Target, desired: DesiredResource[], _ctx: ProviderContext): Promise<ObservedResource[]> {
  const couch = server(target);
  let docs: ReplicationDoc[];
  try {
    const res = (await couch.request({ db: REPLICATOR, path: '_all_docs', qs: { include_docs: true } })) as { rows: { doc?: ReplicationDoc }[] };
    docs = res.rows.flatMap((r) => (r.doc && !r.doc._id.startsWith('_design/') ? [r.doc] : []));
  } catch (err) {
    if ((err as CouchError).statusCode === 404) docs = []; // no _replicator yet: apply creates it
    else throw describeError(target, `could not read ${REPLICATOR}`, err);
  }
  const scheduler = await schedulerStates(couch);
  const out: ObservedResource[] = [];
  const seen = new Set<string>();
  for (const doc of docs) {
    const mine = doc.bkp?.managed_by === 'bkp' && doc.bkp.target === target.name;
    if (!mine && !desired.some((d) => d.name === doc._id)) continue;
    seen.add(doc._id);
    out.push(toObserved(doc, scheduler?.get(doc._id)));
  }
  // A declared document that is gone: a tombstone says it was deleted (drift), not never made.
  for (const d of desired) {
    if (seen.has(d.name)) continue;
    if (await isTombstone(couch, d.name)) out.push({ kind: 'replication', name: d.name, managed: false, spec: {}, sensitive: SENSITIVE, deleted: true });
  }
  return out;
}

/** States from `_scheduler/docs`, or undefined on servers without the scheduler (CouchDB < 2.1, PouchDB Server). */
async function schedulerStates(couch: nano.ServerScope): Promise<Map<string, SchedulerDoc> | undefined> {
  try {
    const res = (await couch.request({ path: `_scheduler/docs/${REPLICATOR}`, qs: { limit: 1000 } })) as { docs?: SchedulerDoc[] };
    if (!Array.isArray(res.docs)) return undefined;
    return new Map(res.docs.map((d) => [d.doc_id, d]));
  } catch {
    return undefined;
  }
}

/**
 * Whether a document id has a deleted revision: `open_revs=all` lists the tombstone on CouchDB and
 * PouchDB Server alike (CouchDB also says `reason: deleted` on a plain GET; PouchDB says `missing`).
 */
async function isTombstone(couch: nano.ServerScope, id: string): Promise<boolean> {
  try {
    const revs = (await couch.request({ db: REPLICATOR, doc: id, qs: { open_revs: 'all' }, headers: { accept: 'application/json' } })) as { ok?: { _deleted?: boolean } }[];
    return Array.isArray(revs) && revs.length > 0 && revs.every((r) => r.ok?._deleted === true);
  } catch {
    return false; // 404: never existed
  }
}

function toObserved(doc: ReplicationDoc, sched: SchedulerDoc | undefined): ObservedResource {
  const source = endpointSpec(doc.source);
  const target = endpointSpec(doc.target);
  const spec: Record<string, ResourceValue> = {
    source: source.url,
    target: target.url,
    source_auth: source.auth,
    target_auth: target.auth,
    create_target: doc.create_target ?? false,
    continuous: doc.continuous ?? false,
  };
  const managed = doc.bkp?.managed_by === 'bkp';
  return {
    kind: 'replication',
    name: doc._id,
    managed,
    ...(managed ? { target: doc.bkp!.target, ...(doc.bkp!.unit ? { unit: doc.bkp!.unit } : {}), mark_digest: doc.bkp!.spec_digest } : {}),
    spec,
    sensitive: SENSITIVE,
    ...(doc._rev ? { revision: doc._rev } : {}),
    state: sched ? schedulerState(sched) : documentState(doc),
  };
}

/** An endpoint as a credential-free URL and `user:password` (from `auth.basic`, a Basic header, or the URL). */
function endpointSpec(e: Endpoint | undefined): { url: string | null; auth: string | null } {
  if (e === undefined) return { url: null, auth: null };
  const raw = typeof e === 'string' ? e : e.url;
  let split: ReturnType<typeof splitCredentials>;
  try {
    split = splitCredentials(raw);
  } catch {
    return { url: raw, auth: null }; // a relative name: a local database
  }
  let auth = split.username !== undefined ? `${split.username}:${split.password ?? ''}` : null;
  if (typeof e === 'object' && e.auth?.basic) auth = `${e.auth.basic.username}:${e.auth.basic.password}`;
  const header = typeof e === 'object' ? e.headers?.Authorization ?? e.headers?.authorization : undefined;
  if (typeof header === 'string' && header.startsWith('Basic ')) auth = Buffer.from(header.slice(6), 'base64').toString('utf8');
  return { url: split.url, auth };
}

function schedulerState(s: SchedulerDoc): ResourceState {
  const status: ResourceState['status'] =
    s.state === 'completed' ? 'completed'
    : s.state === 'failed' ? 'failed'
    : s.state === 'crashing' || s.state === 'error' ? 'crashing'
    : s.state === 'running' ? 'running'
    : s.state === 'pending' || s.state === 'initializing' ? 'pending'
    : 'unknown';
  const error = s.info?.error;
  return { status, ...(error ? { error: String(error) } : {}), ...(s.last_updated ? { last_run_at: s.last_updated } : {}) };
}

/** CouchDB 1.x and PouchDB Server write the state into the document itself. */
function documentState(doc: ReplicationDoc): ResourceState {
  const st = doc._replication_state;
  const status: ResourceState['status'] =
    st === 'completed' ? 'completed' : st === 'error' || st === 'failed' ? 'failed' : st === 'triggered' ? 'running' : st === undefined ? 'pending' : 'unknown';
  const t = doc._replication_state_time;
  // CouchDB 1.x wrote seconds since the epoch; PouchDB Server writes ISO strings.
  const at = typeof t === 'number' ? new Date(t * 1000).toISOString() : t;
  return { status, ...(doc._replication_state_reason ? { error: doc._replication_state_reason } : {}), ...(at ? { last_run_at: at } : {}) };
}

/**
 * How a server takes credentials in a replication document: CouchDB 3.2+ (and Cloudant) an
 * `auth.basic` object it masks; older CouchDB and PouchDB Server only a Basic header.
 */
type CredentialForm = 'auth' | 'header';

async function credentialForm(couch: nano.ServerScope): Promise<CredentialForm> {
  try {
    const info = (await couch.request({ path: '' })) as { couchdb?: string; version?: string; vendor?: { name?: string } };
    if (info.couchdb === undefined) return 'header'; // PouchDB Server answers {"express-pouchdb": "Welcome"}
    if (/cloudant/i.test(info.vendor?.name ?? '')) return 'auth';
    const [major = 0, minor = 0] = (info.version ?? '0.0').split('.').map(Number);
    return major > 3 || (major === 3 && minor >= 2) ? 'auth' : 'header';
  } catch {
    return 'auth';
  }
}

/** The document bkp writes for a declared replication: credentials out of the URLs. */
function toDocument(d: DesiredResource, form: CredentialForm): ReplicationDoc {
  const endpoint = (url: ResourceValue, auth: ResourceValue): Endpoint => {
    if (typeof auth !== 'string') return String(url);
    if (form === 'header') return { url: String(url), headers: { Authorization: `Basic ${Buffer.from(auth).toString('base64')}` } };
    const i = auth.indexOf(':');
    return { url: String(url), auth: { basic: { username: auth.slice(0, i), password: auth.slice(i + 1) } } };
  };
  return {
    _id: d.name,
    source: endpoint(d.spec.source ?? null, d.spec.source_auth ?? null),
    target: endpoint(d.spec.target ?? null, d.spec.target_auth ?? null),
    create_target: d.spec.create_target === true,
    continuous: d.spec.continuous === true,
    bkp: { managed_by: 'bkp', target: d.target, ...(d.unit ? { unit: d.unit } : {}), spec_digest: specDigest(d.spec, d.sensitive) },
  };
}

export interface ReplicationWaitOptions {
  /** How long apply waits for a one-shot replication to complete. */
  timeoutMs: number;
  pollMs: number;
}

/**
 * Carries out one planned action. An update replaces the document (delete, then create): a
 * completed one-shot task only runs again as a new document, and a running one cannot be edited
 * (PouchDB Server refuses; CouchDB restarts it anyway). Then, for a one-shot task, waits until it
 * completes, so `apply` reports what really happened, not that a task was queued.
 */
export async function applyReplication(target: Target, a: ResourceAction, d: DesiredResource | undefined, ctx: ProviderContext, wait: ReplicationWaitOptions): Promise<ActionOutput> {
  const couch = server(target);
  const db = couch.use<ReplicationDoc>(REPLICATOR);
  await ensureReplicatorDb(couch, target);

  if (a.op !== 'create') {
    const current = await currentDoc(db, a.name, target);
    if (!current) throw new Error(`replication document ${a.name} is gone since the plan was made; run bkp plan again`);
    if (a.revision && current._rev !== a.revision) {
      throw new Error(`replication document ${a.name} changed since the plan was made (revision ${current._rev}, planned ${a.revision}); run bkp plan again`);
    }
    if (current.bkp?.managed_by !== 'bkp') throw new Error(`replication document ${a.name} is not bkp's; bkp never changes it`);
    try {
      await db.destroy(a.name, current._rev!);
    } catch (err) {
      throw describeError(target, `could not delete ${REPLICATOR}/${a.name}`, err);
    }
    if (a.op === 'delete') return { detail: `deleted ${REPLICATOR}/${a.name}` };
  }
  if (!d) throw new Error(`replication ${a.name} is no longer declared by the policy`);
  const doc = toDocument(d, await credentialForm(couch));
  try {
    await db.insert(doc);
  } catch (err) {
    if ((err as CouchError).statusCode === 409) throw new Error(`replication document ${a.name} was created by someone else since the plan was made; run bkp plan again`);
    throw describeError(target, `could not write ${REPLICATOR}/${a.name}`, err);
  }
  if (d.spec.continuous === true) return { detail: `${a.op === 'create' ? 'created' : 'replaced'} ${REPLICATOR}/${a.name} (continuous)` };
  ctx.log(`replication ${a.name}: waiting for ${d.spec.source} → ${d.spec.target} to complete`);
  return waitForCompletion(couch, db, a.name, target, wait);
}

async function ensureReplicatorDb(couch: nano.ServerScope, target: Target): Promise<void> {
  try {
    await couch.db.create(REPLICATOR);
  } catch (err) {
    const code = (err as CouchError).statusCode;
    if (code !== 412) throw describeError(target, `could not create ${REPLICATOR}`, err);
  }
}

async function currentDoc(db: nano.DocumentScope<ReplicationDoc>, id: string, target: Target): Promise<ReplicationDoc | undefined> {
  try {
    return (await db.get(id)) as ReplicationDoc;
  } catch (err) {
    if ((err as CouchError).statusCode === 404) return undefined;
    throw describeError(target, `could not read ${REPLICATOR}/${id}`, err);
  }
}

async function waitForCompletion(couch: nano.ServerScope, db: nano.DocumentScope<ReplicationDoc>, id: string, target: Target, wait: ReplicationWaitOptions): Promise<ActionOutput> {
  const deadline = Date.now() + wait.timeoutMs;
  const useScheduler = (await schedulerStates(couch)) !== undefined;
  for (;;) {
    let state: ResourceState;
    let written: number | undefined;
    if (useScheduler) {
      const s = (await schedulerStates(couch))?.get(id);
      state = s ? schedulerState(s) : { status: 'pending' };
      written = s?.info?.docs_written;
    } else {
      const doc = await currentDoc(db, id, target);
      if (!doc) throw new Error(`replication document ${id} was deleted while bkp waited for it`);
      state = documentState(doc);
      written = doc._replication_stats?.docs_written;
    }
    if (state.status === 'completed') return { detail: `replication completed${written !== undefined ? `: ${written} document${written === 1 ? '' : 's'} written` : ''}` };
    if (state.status === 'failed') throw new Error(redact(`replication ${id} failed: ${state.error ?? 'the server gave no reason'}`));
    if (Date.now() > deadline) {
      throw new Error(`replication ${id} did not complete within ${Math.round(wait.timeoutMs / 1000)} s (state: ${state.status}${state.error ? `: ${state.error}` : ''}); it keeps running on the server, and the next plan shows its state`);
    }
    await new Promise((r) => setTimeout(r, wait.pollMs));
  }
}
