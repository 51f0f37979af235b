import type { Target } from '../../policy/types.js';
import type { DesiredResource } from '../types.js';
import { couchdbReplications } from './couchdb.js';

/**
 * The declarative resources a target asks for (DESIGN §6), from the policy alone: pure, so the
 * planner can diff them and apply can rebuild the secret parts a plan file leaves out.
 */
export function desiredResources(target: Target, units: string[]): DesiredResource[] {
  switch (target.engine) {
    case 'couchdb':
      return couchdbReplications(target, units);
    default:
      return [];
  }
}

/** Whether the target's units get artifacts in bkp's storage (a CouchDB target may only replicate). */
export function producesArtifacts(target: Target): boolean {
  if (target.engine === 'couchdb') return (target.settings as { export?: boolean }).export !== false;
  return true;
}
