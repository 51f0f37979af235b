import { clockFrom, loadPolicyOrFail, selectTargets, stdoutStyle, write } from '../context.js';
import { readCatalog, storagesOf } from '../catalog.js';
import { retainUnit } from '../../planner/unit-retention.js';
import { renderCatalogText, renderRunsText, type CatalogEntry } from '../../render/catalog-text.js';
import { readRunRecords } from '../../apply/run-record.js';
import { redact } from '../../core/secrets.js';

export interface ListArgs {
  config: string;
  now?: string;
  target?: string;
  storage?: string;
  json: boolean;
  runs: boolean;
}

/** `bkp list [T]`: every backup with time, kind, size, checksum and the rules that keep it. */
export async function listCommand(args: ListArgs): Promise<number> {
  const policy = await loadPolicyOrFail(args.config);
  const targets = selectTargets(policy, args.target ? [args.target] : undefined);
  const now = clockFrom(args).now();
  const catalog = await readCatalog(policy, targets, args.storage);

  if (args.runs) {
    const runs = [];
    for (const [name, storage] of catalog.storages) {
      if (args.storage && name !== args.storage) continue;
      for (const r of await readRunRecords(storage)) {
        if (!args.target || r.targets.includes(args.target)) runs.push({ storage: name, ...r });
      }
    }
    write(args.json ? redact(JSON.stringify({ runs }, null, 2)) : renderRunsText(runs, stdoutStyle()));
    return 0;
  }

  const entries: CatalogEntry[] = [];
  for (const o of catalog.observed) {
    for (const target of targets.filter((t) => storagesOf(t).includes(o.name))) {
      const rules = policy.storages[o.name]?.retention ?? target.schedule.retention;
      const mine = o.backups.filter((b) => b.target === target.name);
      for (const unit of [...new Set(mine.map((b) => b.unit))].sort()) {
        const backups = mine.filter((b) => b.unit === unit);
        const items = backups.map((b) => ({ id: b.id, time: new Date(b.started_at), kind: b.kind }));
        const kept = retainUnit(items, rules, target.schedule.timezone, now, backups[backups.length - 1]?.id);
        for (const b of backups) {
          entries.push({
            storage: o.name,
            target: target.name,
            unit,
            id: b.id,
            kind: b.kind,
            started_at: b.manifest?.started_at ?? b.started_at,
            finished_at: b.manifest?.finished_at,
            size: b.manifest?.size ?? b.size,
            sha256: b.manifest?.sha256,
            compression: b.manifest?.compression,
            kept_by: kept.reasons[b.id] ?? [],
            key: b.key,
            problem: catalog.unreadable.get(`${o.name}:${b.key}`),
          });
        }
      }
    }
  }
  const incomplete = catalog.observed.flatMap((o) => o.incomplete);
  if (args.json) write(redact(JSON.stringify({ now: now.toISOString(), backups: entries, incomplete }, null, 2)));
  else write(renderCatalogText(entries, incomplete, now, stdoutStyle()));
  return 0;
}
