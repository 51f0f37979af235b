import { pipeline } from 'node:stream';
import type { ChalkInstance } from 'chalk';
import { clockFrom, loadPolicyOrFail, selectTargets, stdoutStyle, write } from '../context.js';
import { readCatalog, unitBackups } from '../catalog.js';
import { selectBackup } from '../select-backup.js';
import { checkArtifact } from '../../apply/check-artifact.js';
import { HashingStream, writeBackup } from '../../apply/write-backup.js';
import { LockSet } from '../../apply/locks.js';
import { runHooks } from '../../apply/hooks.js';
import { loadProvider } from '../../providers/registry.js';
import type { Provider, RestoreDestination, RestoreResult } from '../../providers/types.js';
import type { Policy, Target } from '../../policy/types.js';
import type { Storage } from '../../storage/types.js';
import { UserError } from '../../core/diagnostics.js';
import { redact } from '../../core/secrets.js';
import { newId } from '../../core/ids.js';
import { formatBytes } from '../../render/style.js';
import { assertDecodable, decodeStreams, storageEncoding } from '../../storage/codec/index.js';
import { engineCatalog } from '../../planner/resources/index.js';
import { restoreFromEngineCatalog } from './restore-catalog.js';

export interface RestoreArgs {
  config: string;
  now?: string;
  target: string;
  unit?: string;
  backup?: string;
  to?: string;
  force: boolean;
  storage?: string;
  name?: string;
  peerUrl?: string;
  clientUrl?: string;
  /** couchdb: restore by replicating `replicate_to/DB` back, no artifact. */
  fromReplica?: boolean;
  /** elasticsearch: which indices of the snapshot, and how to rename them. */
  indices?: string[];
  renamePattern?: string;
  renameReplacement?: string;
}

/**
 * `bkp restore T`: checks the chosen artifact against its manifest first, refuses to overwrite
 * data without --force, and with --force takes an on-demand safety backup of what is there
 * before overwriting it in place.
 */
export async function restoreCommand(args: RestoreArgs): Promise<number> {
  const policy = await loadPolicyOrFail(args.config);
  const [target] = selectTargets(policy, [args.target]);
  const t = target!;
  const style = stdoutStyle();
  if (args.fromReplica) return restoreFromReplica(policy, t, args, style);
  // Elasticsearch snapshots live in the cluster: the engine restores them in place.
  if (engineCatalog(t)) return restoreFromEngineCatalog(policy, t, args);
  if (args.indices || args.renamePattern) throw new UserError('--indices and --rename-pattern apply to elasticsearch targets only');
  const catalog = await readCatalog(policy, [t], args.storage);
  const units = [...new Set(unitBackups(catalog, t.name).map((b) => b.unit))].sort();
  const unit = args.unit ?? (units.length === 1 ? units[0] : undefined);
  if (!unit) {
    throw new UserError(units.length === 0 ? `target ${t.name}: no good backup to restore` : `target ${t.name} has several units: pick one with --unit (${units.join(', ')})`);
  }
  if (!units.includes(unit)) throw new UserError(`target ${t.name} has no backup of unit "${unit}" (units with backups: ${units.join(', ') || 'none'})`);

  // Storages in the target's order: the first that holds the chosen backup is read.
  const candidates = unitBackups(catalog, t.name, unit).sort((a, b) => t.storage.indexOf(a.storage) - t.storage.indexOf(b.storage));
  const chosen = selectBackup(candidates, args.backup, t.schedule.timezone, `target ${t.name}, unit ${unit}`);
  const record = candidates.find((b) => b.id === chosen.id)!;
  const manifest = record.manifest!;
  const storage = catalog.storages.get(record.storage)!;
  const provider = await loadProvider(t.engine);
  const opts = { to: args.to, force: args.force, name: args.name, peerUrl: args.peerUrl, clientUrl: args.clientUrl };
  const key = policy.storages[record.storage]?.encryption?.key;
  // Before anything else: an encrypted backup and no key (or a format this bkp cannot read).
  assertDecodable(manifest, key, { storage: storage.name, id: manifest.id });
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const locks = new LockSet(`bkp restore run ${newId()}`, (m) => write(style.yellow(`Warning: ${m}`)));
  await locks.acquire([{ storage: catalog.storages.get(t.storage[0]!)!, target: t.name, units: [`${t.name}/${unit}`] }]);
  try {
    write(`Restoring ${t.name}/${unit} backup ${manifest.id} (${manifest.kind}, started ${manifest.started_at}) from storage ${storage.name}`);
    // An encrypted backup is decrypted once here (every chunk authenticated, the contents'
    // sha256 checked) so a wrong key or a tampered artifact stops before the destination is touched.
    const check = await checkArtifact(storage, record, manifest, undefined, { key });
    if (check.keyProblem) throw new UserError(`${check.keyProblem}; nothing was restored`);
    if (!check.ok) throw new UserError(`backup ${manifest.id} fails its checksum, nothing was restored: ${check.problems.join('; ')}`);

    const dest = await provider.restoreTarget(t, unit, opts);
    if (dest.hasData && !args.force) {
      throw new UserError(`${dest.destination} already holds data and restoring overwrites it: run again with --force${dest.safety ? ' (bkp first takes a safety backup)' : ''}`);
    }
    const safetyId = await safetyBackup(policy, t, dest, provider, catalog.storages.get(t.storage[0]!)!, args, style, log);

    // storage → sha256 of the stored bytes → decrypt → decompress → sha256 of the contents → engine.
    const decoders = decodeStreams(manifest, key, { subject: { storage: storage.name, id: manifest.id } });
    const stored = new HashingStream();
    const content = decoders.length ? new HashingStream() : stored;
    let decodeError: Error | undefined;
    for (const d of decoders) d.once('error', (err: Error) => (decodeError ??= err));
    const source = await storage.get(record.key);
    pipeline(decoders.length ? [source, stored, ...decoders, content] : [source, stored], () => undefined);
    const stopped = (why: string) =>
      new UserError(`restore stopped: ${why}: ${dest.destination} may be partially written${safetyId ? `; the safety backup ID is ${safetyId} (restore it with --unit ${dest.safety!.unit} --backup ${safetyId})` : ''}`);
    let result: RestoreResult;
    try {
      result = await provider.restore(t, unit, content, manifest, opts, { log });
    } catch (err) {
      if (decodeError) throw stopped(decodeError.message);
      throw err;
    }
    if (decodeError) throw stopped(decodeError.message);
    const sum = stored.digest();
    if (sum !== manifest.sha256) {
      throw stopped(`backup ${manifest.id} changed while it was being restored (sha256 mismatch)`);
    }
    if (content !== stored && manifest.content_sha256 !== undefined && content.digest() !== manifest.content_sha256) {
      throw stopped(`the decoded contents of backup ${manifest.id} do not match the manifest's content_sha256`);
    }
    write(style.green.bold(`Restored ${t.name}/${unit} backup ${manifest.id} into ${result.destination}`));
    for (const d of result.details) write(`  ${d}`);
    await afterRestore(t, unit, result, log);
  } finally {
    await locks.release();
  }
  return 0;
}

/**
 * The runbooks' warning: the restore tool clears the destination first. When the destination
 * holds data and the engine can back it up, an on-demand safety backup of it is taken first;
 * returns its id.
 */
async function safetyBackup(
  policy: Policy,
  t: Target,
  dest: RestoreDestination,
  provider: Provider,
  primary: Storage,
  args: RestoreArgs,
  style: ChalkInstance,
  log: (line: string) => void,
): Promise<string | undefined> {
  if (dest.hasData && dest.safety) {
    const safetyTarget = { ...t, settings: { ...t.settings, ...dest.safety.settings } };
    const clock = clockFrom(args);
    const t0 = Date.now();
    const safety = await writeBackup({
      target: safetyTarget,
      unit: dest.safety.unit,
      kind: 'on_demand',
      provider,
      storage: primary,
      startedAt: clock.now(),
      ctx: { log },
      elapsedMs: () => Date.now() - t0,
      encode: storageEncoding(policy.storages[t.storage[0]!]),
    });
    write(style.green(`Safety backup ${safety.id} of ${t.name}/${dest.safety.unit} taken (on-demand, ${formatBytes(safety.size)}): restore it with --unit ${dest.safety.unit} --backup ${safety.id}`));
    return safety.id;
  }
  if (dest.hasData) write(style.yellow(`Overwriting ${dest.destination} (--force); bkp cannot back it up first`));
  return undefined;
}

/**
 * `hooks.after_restore`: the runbooks' post-restore scripts (seed 000: re-create design
 * documents, check relations), run after a successful restore with the same timeout and
 * process-group handling as backup hooks. They learn what was restored from the environment;
 * the destination is shown without credentials.
 */
async function afterRestore(t: Target, unit: string, result: RestoreResult, log: (line: string) => void): Promise<void> {
  const commands = t.hooks.after_restore ?? [];
  if (commands.length === 0) return;
  try {
    await runHooks('after_restore', commands, {
      timeoutMs: t.hooks.timeoutMs,
      cwd: t.baseDir,
      target: t.name,
      env: { ...process.env, BKP_UNIT: unit, BKP_RESTORE_DESTINATION: redact(result.destination) },
      log,
    });
  } catch (err) {
    throw new UserError(`the restore succeeded, but ${(err as Error).message}`);
  }
  write(`after_restore: ${commands.length} command${commands.length === 1 ? '' : 's'} ran`);
}

/**
 * `bkp restore T --unit U --from-replica`: restores by replicating the replica's copy back
 * (couchdb, seed 000), with the same rules as any restore: refuses to write into a database
 * holding data without --force, and with --force first takes a safety backup of it.
 */
async function restoreFromReplica(policy: Policy, t: Target, args: RestoreArgs, style: ChalkInstance): Promise<number> {
  if (t.engine !== 'couchdb') throw new UserError(`--from-replica: target ${t.name} is a ${t.engine} target; only couchdb targets restore from a replica`);
  if (args.backup !== undefined) throw new UserError('--from-replica restores from the replica, not from a backup: drop --backup');
  const { reverseReplication, replicaUnit } = await import('../../providers/couchdb/reverse-replication.js');
  const unit = replicaUnit(t, args.unit);
  const provider = await loadProvider(t.engine);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const reverse = await reverseReplication(t, unit, args.to);
  const dest = reverse.dest;
  if (dest.hasData && !args.force) {
    throw new UserError(`${dest.destination} already holds data and replicating into it merges the replica's documents into it: run again with --force${dest.safety ? ' (bkp first takes a safety backup)' : ''}`);
  }
  const { openStorage } = await import('../../storage/registry.js');
  const primary = await openStorage(policy.storages[t.storage[0]!]!);
  const locks = new LockSet(`bkp restore run ${newId()}`, (m) => write(style.yellow(`Warning: ${m}`)));
  await locks.acquire([{ storage: primary, target: t.name, units: [`${t.name}/${unit}`] }]);
  try {
    write(`Restoring ${t.name}/${unit} from its replica`);
    await safetyBackup(policy, t, dest, provider, primary, args, style, log);
    const result = await reverse.run(log);
    write(style.green.bold(`Restored ${t.name}/${unit} from its replica into ${result.destination}`));
    for (const d of result.details) write(`  ${d}`);
    await afterRestore(t, unit, result, log);
  } finally {
    await locks.release();
    await primary.close?.();
  }
  return 0;
}
