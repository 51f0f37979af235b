import type { Target } from '../../policy/types.js';
import type { RestoreDestination, RestoreResult } from '../types.js';
import { UserError } from '../../core/diagnostics.js';
import { CouchClient } from './client.js';
import { restoreDestination, type CouchDestination } from './restore.js';
import { couchSettings, databaseForUnit, dbPath, unitForDatabase, urlWithCredentials } from './settings.js';

/** A one-shot replication of a large database takes as long as it takes; the server does the work. */
const REPLICATE_TIMEOUT_MS = 24 * 3_600_000;

interface ReplicateAnswer {
  ok?: boolean;
  no_changes?: boolean;
  // PouchDB servers answer the counts at the top level, Apache CouchDB in history[0].
  docs_read?: number;
  docs_written?: number;
  doc_write_failures?: number;
  history?: { docs_read?: number; docs_written?: number; doc_write_failures?: number }[];
}

export interface ReverseReplication {
  /** The destination, as the restore command checks and backs it up. */
  dest: RestoreDestination;
  run(log: (line: string) => void): Promise<RestoreResult>;
}

/**
 * `bkp restore T --unit DB --from-replica`: the runbook's restore ("create a replication task
 * that has the replicated database as the source and the original database as the target"). A
 * one-shot `POST /_replicate` on the destination's server, pulling `replicate_to/DB` into the
 * destination (the unit's database, or `--to`). No artifact is involved. Replication merges
 * revision trees: documents created in the destination since stay, and a document edited on both
 * sides keeps CouchDB's winner; hence the same `--force` rule as any restore over live data.
 */
export async function reverseReplication(target: Target, unit: string, to: string | undefined): Promise<ReverseReplication> {
  if (target.engine !== 'couchdb') throw new UserError(`--from-replica: target ${target.name} is a ${target.engine} target; only couchdb targets restore from a replica`);
  const s = couchSettings(target);
  const replica = s.replicateTo;
  if (!replica) throw new UserError(`--from-replica: target ${target.name} has no replicate_to: there is no replica to restore from`);
  const db = databaseForUnit(unit);
  const d: CouchDestination = restoreDestination(target.name, s, unit, to);
  const replicaClient = new CouchClient(replica, target.name);
  // The replica's database must be there: a missing one would otherwise replicate "nothing" and succeed.
  const source = await replicaClient.dbInfo(db);
  const destClient = new CouchClient(d.endpoint, target.name);
  const info = await destClient.dbInfoIfExists(d.db);
  const dest: RestoreDestination = {
    destination: `CouchDB database ${d.display}${info ? ` (${info.doc_count} documents)` : ' (new database)'}`,
    hasData: (info?.doc_count ?? 0) > 0,
    safety: { unit: unitForDatabase(d.db), settings: d.urlSetting ? { url: d.urlSetting, databases: [d.db] } : undefined },
  };
  return {
    dest,
    async run(log) {
      const from = `${replica.origin}${dbPath(db)}`;
      log(`replicating ${from} (${source.doc_count} documents) into ${d.display}`);
      const answer = await destClient.json<ReplicateAnswer>('POST', '/_replicate', {
        db: d.db,
        // Credentials in the URLs: the one form every CouchDB and PouchDB server takes (an
        // endpoint object's `headers` is not understood by PouchDB servers). Error texts that
        // echo them are masked by redact().
        body: { source: urlWithCredentials(replica, dbPath(db)), target: urlWithCredentials(d.endpoint, dbPath(d.db)), create_target: true },
        timeoutMs: REPLICATE_TIMEOUT_MS,
      });
      const h = answer.history?.[0];
      const written = answer.docs_written ?? h?.docs_written ?? 0;
      const read = answer.docs_read ?? h?.docs_read ?? 0;
      const failures = answer.doc_write_failures ?? h?.doc_write_failures ?? 0;
      if (failures > 0) throw new UserError(`target ${target.name}: replication from ${from} into ${d.display}: ${failures} documents could not be written (${written} were)`);
      const after = await destClient.dbInfo(d.db);
      return {
        destination: d.display,
        details: [
          answer.no_changes ? `replicated from ${from}: no changes (the destination already had every revision)` : `replicated from ${from}: ${read} documents read, ${written} written`,
          `the database now holds ${after.doc_count} documents (the replica holds ${source.doc_count})`,
        ],
      };
    },
  };
}

/** The unit `--from-replica` restores: `--unit`, or the target's only database. */
export function replicaUnit(target: Target, unit: string | undefined): string {
  if (unit) return unit;
  const s = couchSettings(target);
  if (Array.isArray(s.databases) && s.databases.length === 1) return unitForDatabase(s.databases[0]!);
  const units = Array.isArray(s.databases) ? s.databases.map(unitForDatabase).join(', ') : 'one of the replica\'s databases';
  throw new UserError(`target ${target.name} has several databases: pick the one to restore from the replica with --unit (${units})`);
}
