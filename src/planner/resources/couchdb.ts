import type { Target } from '../../policy/types.js';
import type { DesiredResource } from '../types.js';
import { joinDatabase, splitCredentials } from '../../core/url-credentials.js';

/** The `_replicator` document id bkp uses for a target's database: readable, and unique per target. */
export function replicationDocId(target: string, db: string): string {
  return `bkp-${target}-${db}`;
}

/**
 * One replication task per database, from the source server to `replicate_to/<db>` (seed 000):
 * one-shot unless `continuous`, with `create_target` so a fresh replica needs no preparation.
 * Credentials leave the URLs and become sensitive fields (the document's `auth` objects).
 */
export function couchdbReplications(target: Target, units: string[]): DesiredResource[] {
  const s = target.settings as { url?: string; replicate_to?: string; continuous?: boolean };
  if (!s.replicate_to || !s.url) return [];
  const source = splitCredentials(s.url);
  const replica = splitCredentials(s.replicate_to);
  const continuous = s.continuous === true;
  return units.map((unit) => ({
    kind: 'replication' as const,
    target: target.name,
    unit,
    name: replicationDocId(target.name, unit),
    spec: {
      // Units are database names with characters unsafe in file names %-escaped (providers/couchdb/settings.ts).
      source: joinDatabase(source.url, decodeURIComponent(unit)),
      target: joinDatabase(replica.url, decodeURIComponent(unit)),
      source_auth: basicAuth(source),
      target_auth: basicAuth(replica),
      create_target: true,
      continuous,
    },
    sensitive: ['source_auth', 'target_auth'],
    rerunnable: !continuous,
  }));
}

/** `user:password`, or null for a server without credentials (CouchDB in admin party, PouchDB). */
function basicAuth(u: { username?: string; password?: string }): string | null {
  return u.username === undefined ? null : `${u.username}:${u.password ?? ''}`;
}
