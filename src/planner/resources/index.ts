import type { Target } from '../../policy/types.js';
import type { DesiredResource } from '../types.js';
import { couchdbReplications } from './couchdb.js';
import { ES_UNIT, elasticsearchResources, esMode } from './elasticsearch.js';

/**
 * The declarative resources a target asks for (DESIGN §6), from the policy alone: pure, so the
 * planner can diff them and apply can rebuild the secret parts a plan file leaves out.
 */
export function desiredResources(target: Target, units: string[]): DesiredResource[] {
  switch (target.engine) {
    case 'couchdb':
      return couchdbReplications(target, units);
    case 'elasticsearch':
      return elasticsearchResources(target);
    default:
      return [];
  }
}

/** Whether the target's units get artifacts in bkp's storage (a CouchDB target may only replicate). */
export function producesArtifacts(target: Target): boolean {
  if (target.engine === 'couchdb') return (target.settings as { export?: boolean }).export !== false;
  // In SLM mode the cluster takes and expires the snapshots itself.
  if (target.engine === 'elasticsearch') return esMode(target) === 'managed';
  return true;
}

/**
 * Targets whose backups live in the engine's own system rather than in bkp's storage: an
 * Elasticsearch snapshot repository. Returns the name of the catalog the planner and apply use
 * as the target's only storage (observe fills it from the engine), or undefined.
 */
export function engineCatalog(target: Target): string | undefined {
  if (target.engine !== 'elasticsearch') return undefined;
  const repo = (target.settings as { snapshot_repository?: { name?: string } }).snapshot_repository?.name;
  return `elasticsearch:${target.name}:${repo ?? ''}`;
}

/** Targets whose engine takes and expires backups itself (SLM): bkp plans no backup and no prune for them. */
export function retentionByEngine(target: Target): boolean {
  return target.engine === 'elasticsearch' && esMode(target) === 'slm';
}

export { ES_UNIT };
