import type { Policy, Target } from '../../policy/types.js';
import { clockFrom, stdoutStyle, write } from '../context.js';
import { readCatalog, unitBackups } from '../catalog.js';
import { selectBackup } from '../select-backup.js';
import { LockSet } from '../../apply/locks.js';
import { openStoragesFor } from '../../apply/observe.js';
import { loadProvider } from '../../providers/registry.js';
import { UserError } from '../../core/diagnostics.js';
import { newId } from '../../core/ids.js';

export interface CatalogRestoreArgs {
  now?: string;
  backup?: string;
  force: boolean;
  indices?: string[];
  renamePattern?: string;
  renameReplacement?: string;
}

/**
 * `bkp restore T` for a target whose backups live in the engine (Elasticsearch snapshots): the
 * engine restores inside its own system; bkp picks the backup, holds the target's lock, and
 * lets the engine refuse to overwrite live data without --force.
 */
export async function restoreFromEngineCatalog(policy: Policy, t: Target, args: CatalogRestoreArgs): Promise<number> {
  const style = stdoutStyle();
  if (args.renameReplacement !== undefined && args.renamePattern === undefined) throw new UserError('--rename-replacement needs --rename-pattern');
  const catalog = await readCatalog(policy, [t]);
  const candidates = unitBackups(catalog, t.name);
  const record = selectBackup(candidates, args.backup, t.schedule.timezone, `target ${t.name}`);
  const provider = await loadProvider(t.engine);
  if (!provider.restoreCatalogBackup) throw new UserError(`engine ${t.engine} cannot restore from its catalog`);
  const storages = await openStoragesFor(policy, [t]);
  const locks = new LockSet(`bkp restore run ${newId()}`, (m) => write(style.yellow(`Warning: ${m}`)));
  await locks.acquire([{ storage: storages.get(t.storage[0]!)!, target: t.name, units: [`${t.name}/${record.unit}`] }]);
  try {
    write(`Restoring ${t.name} backup ${record.id} (${record.kind}, started ${record.started_at}): snapshot ${record.key}`);
    const result = await provider.restoreCatalogBackup(t, record, {
      force: args.force,
      indices: args.indices,
      renamePattern: args.renamePattern,
      renameReplacement: args.renameReplacement,
      now: clockFrom(args).now(),
    }, { log: (line) => process.stderr.write(`${line}\n`) });
    if (result.safety) write(style.green(`Safety snapshot ${result.safety.artifact} taken (backup ${result.safety.id}, on-demand): restore it with --backup ${result.safety.id}`));
    write(style.green.bold(`Restored ${t.name} backup ${record.id} into ${result.destination}`));
    for (const d of result.details) write(`  ${d}`);
    return 0;
  } finally {
    await locks.release();
  }
}
