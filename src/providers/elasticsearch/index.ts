import type { Provider, ProviderContext } from '../types.js';
import type { BackupKind, BackupRecord, DesiredResource, Manifest, ObservedResource, ResourceAction, ResourceValue } from '../../planner/types.js';
import type { Target } from '../../policy/types.js';
import type { ActionOutput } from '../../apply/events.js';
import { UserError } from '../../core/diagnostics.js';
import { newId } from '../../core/ids.js';
import { specDigest } from '../../planner/resources/digest.js';
import { ES_UNIT, slmPolicyId } from '../../planner/resources/elasticsearch.js';
import { createEsClient, matchIndices, type EsClient, type EsSnapshot } from './client.js';
import { esSettings, type EsSettings } from './settings.js';

/**
 * Elasticsearch (issue 6, seed 004): snapshots in a snapshot repository the policy declares.
 * The repository is the catalog (planner/resources `engineCatalog`): in `mode: managed` bkp takes
 * snapshots when due and prunes them by its retention; in `mode: slm` an SLM policy bkp declares
 * takes and expires them. Only snapshots that carry bkp's metadata (or come from bkp's SLM
 * policy) are listed, counted or deleted; PARTIAL and FAILED ones are reported, never counted.
 */

/** bkp's mark in the metadata of the snapshots it takes and of its SLM policy. */
interface SnapshotMark {
  managed_by: 'bkp';
  target: string;
  unit: string;
  kind: BackupKind;
  id: string;
  /** bkp's clock when it took it (`--now` in tests), so due-ness follows bkp's clock. */
  started_at: string;
}

function open(target: Target): { s: EsSettings; es: EsClient } {
  const s = esSettings(target);
  return { s, es: createEsClient(s, target.name) };
}

async function using<T>(target: Target, fn: (c: { s: EsSettings; es: EsClient }) => Promise<T>): Promise<T> {
  const c = open(target);
  try {
    return await fn(c);
  } finally {
    await c.es.close();
  }
}

function isMark(m: unknown): m is SnapshotMark {
  return typeof m === 'object' && m !== null && (m as { managed_by?: unknown }).managed_by === 'bkp';
}

/** Whether a snapshot belongs to the target: taken by bkp for it, or by its SLM policy. */
function isOurs(snap: EsSnapshot, target: string): boolean {
  const m = snap.metadata ?? {};
  return (isMark(m) && m.target === target) || m.policy === slmPolicyId(target);
}

/** Seconds precision, like the names of bkp's other artifacts. */
function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString();
}

function toManifest(target: Target, snap: EsSnapshot, id: string, kind: BackupKind, startedAt: string): Manifest {
  const end = snap.end_time_in_millis ?? snap.start_time_in_millis ?? Date.parse(startedAt);
  return {
    format: 'bkp-manifest/1',
    id,
    target: target.name,
    unit: ES_UNIT,
    engine: 'elasticsearch',
    kind,
    started_at: startedAt,
    finished_at: new Date(end).toISOString(),
    size: 0,
    sha256: '',
    compression: 'none',
    encryption: 'none',
    artifact: snap.snapshot,
    facts: {
      repository: snap.repository,
      snapshot: snap.snapshot,
      uuid: snap.uuid,
      state: snap.state,
      indices: snap.indices.length,
      shards: snap.shards,
      include_global_state: snap.include_global_state,
      ...(snap.version ? { elasticsearch_version: snap.version } : {}),
      ...(typeof snap.metadata?.policy === 'string' ? { slm_policy: snap.metadata.policy } : {}),
    },
  };
}

function toRecord(target: Target, catalog: string, snap: EsSnapshot): BackupRecord {
  const m = snap.metadata ?? {};
  const id = isMark(m) ? m.id : snap.uuid.slice(0, 12).toLowerCase();
  const kind: BackupKind = isMark(m) ? m.kind : 'scheduled';
  const startedAt = isMark(m) ? m.started_at : isoSeconds(snap.start_time_in_millis ?? 0);
  return {
    storage: catalog,
    target: target.name,
    unit: ES_UNIT,
    id,
    kind,
    started_at: isoSeconds(Date.parse(startedAt)),
    key: snap.snapshot,
    manifestKey: snap.snapshot,
    manifest: toManifest(target, snap, id, kind, startedAt),
  };
}

function problem(snap: EsSnapshot): string {
  const failed = snap.shards.failed > 0 ? ` (${snap.shards.failed} of ${snap.shards.total} shards failed${snap.failures[0] ? `: ${snap.failures[0].index}: ${snap.failures[0].reason}` : ''})` : '';
  return `snapshot ${snap.repository}/${snap.snapshot} is ${snap.state}${failed}${snap.reason ? `: ${snap.reason}` : ''}; it is not a good backup and is not counted`;
}

/** A snapshot name bkp takes: lowercase, sortable, unique. */
function snapshotName(target: string, startedAt: Date, id: string): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '').toLowerCase();
  return `bkp-${target}-${stamp}-${id}`;
}

function repoSpec(type: string, settings: Record<string, unknown>, keys: string[]): Record<string, ResourceValue> {
  const spec: Record<string, ResourceValue> = { type };
  // Only the settings the policy declares: the cluster may add its own, which are not drift.
  for (const k of [...keys].sort()) spec[`settings.${k}`] = settings[k] === undefined ? null : String(settings[k]);
  return spec;
}

async function observeEs(target: Target, desired: DesiredResource[]): Promise<ObservedResource[]> {
  return using(target, async ({ es }) => {
    const out: ObservedResource[] = [];
    for (const d of desired.filter((x) => x.kind === 'snapshot_repository')) {
      const repo = await es.getRepository(d.name);
      if (!repo) continue;
      const keys = Object.keys(d.spec).filter((k) => k.startsWith('settings.')).map((k) => k.slice('settings.'.length));
      // A repository cannot carry a mark: the one the policy names is bkp's to keep as declared.
      out.push({ kind: 'snapshot_repository', name: d.name, managed: true, target: target.name, spec: repoSpec(repo.type, repo.settings, keys), sensitive: [] });
    }
    // bkp's SLM policy is looked up whatever the mode, so leaving `mode: slm` deletes it.
    const id = slmPolicyId(target.name);
    const p = await es.getSlmPolicy(id);
    if (p) {
      const meta = p.policy.config?.metadata?.bkp;
      const managed = isMark(meta) || (typeof meta === 'object' && meta !== null && (meta as { managed_by?: string }).managed_by === 'bkp');
      const indices = p.policy.config?.indices;
      out.push({
        kind: 'snapshot_policy',
        name: id,
        managed,
        ...(managed ? { target: (meta as { target: string }).target, mark_digest: (meta as { spec_digest?: string }).spec_digest } : {}),
        spec: {
          schedule: p.policy.schedule,
          name: p.policy.name,
          repository: p.policy.repository,
          indices: Array.isArray(indices) ? indices.join(',') : (indices ?? '*'),
          include_global_state: p.policy.config?.include_global_state ?? false,
          expire_after: p.policy.retention?.expire_after ?? null,
          min_count: p.policy.retention?.min_count ?? null,
          max_count: p.policy.retention?.max_count ?? null,
        },
        sensitive: [],
        revision: String(p.version),
        ...(p.last_failure && (!p.last_success || p.last_failure.time > p.last_success.time)
          ? { state: { status: 'failed' as const, error: p.last_failure.details ?? 'the last snapshot failed', last_run_at: new Date(p.last_failure.time).toISOString() } }
          : {}),
      });
    }
    return out;
  });
}

async function applyEs(target: Target, a: ResourceAction, d: DesiredResource | undefined): Promise<ActionOutput> {
  return using(target, async ({ s, es }) => {
    if (a.kind === 'snapshot_repository') {
      if (a.op === 'delete') throw new UserError(`bkp never unregisters snapshot repository ${a.name}: its snapshots may be the only copy`);
      // The policy's values as written (numbers, booleans), not the text the plan compares.
      await es.putRepository(s.snapshotRepository.name, s.snapshotRepository.type, s.snapshotRepository.settings);
      return { detail: `snapshot repository ${a.name} ${a.op === 'create' ? 'registered' : 'updated'}` };
    }
    if (a.kind === 'snapshot_policy') {
      const current = await es.getSlmPolicy(a.name);
      if (a.op !== 'create' && current && a.revision && String(current.version) !== a.revision) {
        throw new Error(`SLM policy ${a.name} changed since the plan was made (version ${current.version}, planned ${a.revision}); run bkp plan again`);
      }
      if (a.op === 'create' && current) throw new Error(`SLM policy ${a.name} was created by someone else since the plan was made; run bkp plan again`);
      if (a.op === 'delete') {
        await es.deleteSlmPolicy(a.name);
        return { detail: `SLM policy ${a.name} deleted` };
      }
      if (!d) throw new Error(`SLM policy ${a.name} is no longer declared`);
      const sp = d.spec;
      await es.putSlmPolicy(a.name, {
        schedule: String(sp.schedule),
        name: String(sp.name),
        repository: String(sp.repository),
        config: {
          ...(s.indices === 'all' ? {} : { indices: s.indices }),
          include_global_state: sp.include_global_state === true,
          metadata: { bkp: { managed_by: 'bkp', target: target.name, spec_digest: specDigest(sp, d.sensitive) } },
        },
        retention: {
          ...(sp.expire_after !== null ? { expire_after: String(sp.expire_after) } : {}),
          ...(sp.min_count !== null ? { min_count: Number(sp.min_count) } : {}),
          ...(sp.max_count !== null ? { max_count: Number(sp.max_count) } : {}),
        },
      });
      return { detail: `SLM policy ${a.name} ${a.op === 'create' ? 'created' : 'updated'}` };
    }
    throw new Error(`elasticsearch has no ${a.kind} resources`);
  });
}

/** Polls a snapshot until it leaves IN_PROGRESS (SLM's `_execute` does not wait). */
async function waitForSnapshot(es: EsClient, repo: string, name: string, timeoutMs: number): Promise<EsSnapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snap = await es.getSnapshot(repo, name);
    if (snap && snap.state !== 'IN_PROGRESS') return snap;
    if (Date.now() > deadline) throw new Error(`snapshot ${repo}/${name} did not finish within ${Math.round(timeoutMs / 1000)} s; it keeps running in the cluster`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function takeSnapshot(target: Target, kind: BackupKind, startedAt: Date, ctx: ProviderContext): Promise<Manifest> {
  return using(target, async ({ s, es }) => {
    const repo = s.snapshotRepository.name;
    const id = newId();
    let snap: EsSnapshot | undefined;
    if (s.mode === 'slm') {
      // The cluster's own policy takes it, named and expired by SLM, as a scheduled run would.
      const name = await es.executeSlmPolicy(slmPolicyId(target.name));
      ctx.log(`SLM policy ${slmPolicyId(target.name)} started snapshot ${name}`);
      snap = await waitForSnapshot(es, repo, name, s.snapshotTimeoutMs);
    } else {
      const name = snapshotName(target.name, startedAt, id);
      const mark: SnapshotMark = { managed_by: 'bkp', target: target.name, unit: ES_UNIT, kind, id, started_at: isoSeconds(startedAt.getTime()) };
      ctx.log(`taking snapshot ${repo}/${name}`);
      snap = await es.createSnapshot(repo, name, { ...(s.indices === 'all' ? {} : { indices: s.indices }), include_global_state: s.includeGlobalState, metadata: mark as unknown as Record<string, unknown> }, true);
      if (!snap) snap = await waitForSnapshot(es, repo, name, s.snapshotTimeoutMs);
    }
    if (snap.state !== 'SUCCESS') throw new Error(problem(snap));
    const rec = toRecord(target, '', snap);
    return { ...rec.manifest!, kind: s.mode === 'slm' ? kind : rec.manifest!.kind };
  });
}

/** What a name becomes under `rename_pattern`/`rename_replacement` (Java regex `$1` groups, as Elasticsearch applies them). */
function rename(name: string, pattern: string | undefined, replacement: string | undefined): string {
  if (pattern === undefined) return name;
  return name.replace(new RegExp(pattern, 'g'), replacement ?? '');
}

export const elasticsearchProvider: Provider = {
  engine: 'elasticsearch',

  async discoverUnits(target) {
    // Preflight: an unreachable cluster or refused credentials fail here, with the node named.
    await using(target, ({ es }) => es.info());
    return [ES_UNIT];
  },

  async backup() {
    throw new Error('elasticsearch backups are snapshots inside the cluster\'s repository, not streams');
  },
  async restoreTarget() {
    throw new Error('elasticsearch restores go through restoreCatalogBackup');
  },
  async restore() {
    throw new Error('elasticsearch restores go through restoreCatalogBackup');
  },
  async verifyDeep() {
    throw new Error('elasticsearch snapshots are verified through verifyCatalogBackup');
  },

  observeResources: (target, desired) => observeEs(target, desired),
  applyResource: (target, action, desired) => applyEs(target, action, desired),

  async listCatalog(target, catalog) {
    return using(target, async ({ s, es }) => {
      const repo = await es.getRepository(s.snapshotRepository.name);
      if (!repo) return { backups: [], warnings: [] }; // not registered yet: the plan registers it
      const backups: BackupRecord[] = [];
      const warnings: string[] = [];
      for (const snap of await es.listSnapshots(s.snapshotRepository.name)) {
        if (!isOurs(snap, target.name)) continue;
        if (snap.state === 'SUCCESS') backups.push(toRecord(target, catalog, snap));
        else if (snap.state === 'IN_PROGRESS') warnings.push(`snapshot ${snap.repository}/${snap.snapshot} is still in progress`);
        else warnings.push(problem(snap));
      }
      backups.sort((a, b) => a.started_at.localeCompare(b.started_at));
      return { backups, warnings };
    });
  },

  takeBackup: (target, _unit, kind, startedAt, ctx) => takeSnapshot(target, kind, startedAt, ctx),

  async deleteBackup(target, prune) {
    await using(target, async ({ s, es }) => {
      const snap = await es.getSnapshot(s.snapshotRepository.name, prune.before.key);
      if (!snap) return; // already gone: the plan's wish holds
      // Never delete what bkp did not make, whatever the plan file says.
      if (!isOurs(snap, target.name)) throw new Error(`snapshot ${prune.before.key} was not taken by bkp for target ${target.name}; not deleted`);
      await es.deleteSnapshot(s.snapshotRepository.name, prune.before.key);
    });
  },

  async restoreCatalogBackup(target, backup, opts, ctx) {
    const safetyKind: BackupKind = 'on_demand';
    const plan = await using(target, async ({ s, es }) => {
      const repo = s.snapshotRepository.name;
      const snap = await es.getSnapshot(repo, backup.key);
      if (!snap) throw new UserError(`snapshot ${backup.key} is gone from repository ${repo}`);
      const chosen = opts.indices?.length ? matchIndices(snap.indices, opts.indices) : snap.indices.filter((i) => !i.startsWith('.'));
      if (chosen.length === 0) throw new UserError(`snapshot ${snap.snapshot} holds no index matching ${opts.indices?.join(', ') ?? 'its indices'} (it holds: ${snap.indices.join(', ') || 'none'})`);
      const renamed = chosen.map((i) => rename(i, opts.renamePattern, opts.renameReplacement));
      const open = await es.openIndices(renamed);
      return { repo, snap, chosen, renamed, open };
    });
    if (plan.open.length > 0 && !opts.force) {
      throw new UserError(`open indices would be overwritten: ${plan.open.join(', ')}. Run again with --force (bkp first takes a safety snapshot, then closes them), or restore beside them with --rename-pattern and --rename-replacement`);
    }
    // The runbook: "ALL DATA WILL BE REPLACED BY YOUR BACKUP DATA". Keep what is there first.
    const safety = plan.open.length > 0 ? await takeSnapshot(target, safetyKind, opts.now, ctx) : undefined;
    return using(target, async ({ es }) => {
      if (plan.open.length > 0) {
        ctx.log(`closing ${plan.open.join(', ')} so the snapshot can replace them`);
        await es.closeIndices(plan.open);
      }
      const r = await es.restoreSnapshot(plan.repo, plan.snap.snapshot, {
        indices: plan.chosen,
        ...(opts.renamePattern !== undefined ? { rename_pattern: opts.renamePattern, rename_replacement: opts.renameReplacement ?? '' } : {}),
        include_global_state: false,
      });
      const restored = r?.indices ?? plan.renamed;
      return {
        destination: `${restored.join(', ')} on ${es.displayNode}`,
        details: [
          `restored from snapshot ${plan.repo}/${plan.snap.snapshot}: ${restored.length} ${restored.length === 1 ? 'index' : 'indices'} (${restored.join(', ')})${r ? `, ${r.shards.successful}/${r.shards.total} shards` : ''}`,
          ...(safety ? [`safety snapshot ${safety.artifact} (backup ${safety.id}) holds what was there before`] : []),
        ],
        ...(safety ? { safety } : {}),
      };
    });
  },

  async verifyCatalogBackup(target, backup) {
    return using(target, async ({ s, es }) => {
      const snap = await es.getSnapshot(s.snapshotRepository.name, backup.key);
      if (!snap) return { problems: [`snapshot ${backup.key} is gone from repository ${s.snapshotRepository.name}`], details: [] };
      const details = [`snapshot ${snap.snapshot}: ${snap.state}, ${snap.indices.length} indices, ${snap.shards.successful}/${snap.shards.total} shards`];
      return { problems: snap.state === 'SUCCESS' && snap.shards.failed === 0 ? [] : [problem(snap)], details };
    });
  },
};
