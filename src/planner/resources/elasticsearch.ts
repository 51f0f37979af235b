import type { Target } from '../../policy/types.js';
import type { DesiredResource, ResourceValue } from '../types.js';
import { cronToSlm, retentionToSlm } from './slm.js';

/** The fields of an elasticsearch target the planner needs; src/providers/elasticsearch reads the rest. */
interface EsPlanSettings {
  snapshot_repository?: { name: string; type?: string; settings?: Record<string, unknown> };
  mode?: 'managed' | 'slm';
  indices?: string[] | string;
  include_global_state?: boolean;
}

/** The one unit of an elasticsearch target: the cluster's snapshots (the repository is the catalog). */
export const ES_UNIT = 'cluster';

/** The SLM policy id bkp declares for a target in `mode: slm`. */
export function slmPolicyId(target: string): string {
  return `bkp-${target}`;
}

export function esMode(target: Target): 'managed' | 'slm' {
  return (target.settings as EsPlanSettings).mode === 'slm' ? 'slm' : 'managed';
}

export function esIndices(target: Target): string {
  const i = (target.settings as EsPlanSettings).indices;
  return Array.isArray(i) ? i.join(',') : (i ?? '*');
}

/**
 * The snapshot repository (always), and in `mode: slm` the SLM policy that takes and expires
 * the snapshots. Repository settings are compared as text: Elasticsearch returns every
 * repository setting as a string (`compress: "true"`).
 */
export function elasticsearchResources(target: Target): DesiredResource[] {
  const s = target.settings as EsPlanSettings;
  const repo = s.snapshot_repository;
  if (!repo) return [];
  const spec: Record<string, ResourceValue> = { type: repo.type ?? 'fs' };
  for (const k of Object.keys(repo.settings ?? {}).sort()) spec[`settings.${k}`] = String(repo.settings![k]);
  const out: DesiredResource[] = [{ kind: 'snapshot_repository', target: target.name, name: repo.name, spec, sensitive: [] }];
  if (esMode(target) !== 'slm') return out;
  const cron = cronToSlm(target.schedule);
  const retention = retentionToSlm(target.schedule.retention, target.schedule.cron);
  // validate reports these; a plan of an invalid policy never gets here, but stay total.
  if (!cron.ok || !retention.ok) return out;
  out.push({
    kind: 'snapshot_policy',
    target: target.name,
    name: slmPolicyId(target.name),
    spec: {
      schedule: cron.value,
      name: `<bkp-${target.name}-{now/d}>`,
      repository: repo.name,
      indices: esIndices(target),
      include_global_state: s.include_global_state === true,
      expire_after: retention.value.expire_after ?? null,
      min_count: retention.value.min_count,
      max_count: retention.value.max_count ?? null,
    },
    sensitive: [],
  });
  return out;
}
