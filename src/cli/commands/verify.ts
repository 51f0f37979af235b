import { loadPolicyOrFail, selectTargets, stdoutStyle, write } from '../context.js';
import { readCatalog } from '../catalog.js';
import { checkArtifact } from '../../apply/check-artifact.js';
import { loadProvider } from '../../providers/registry.js';
import { renderVerifyJson, renderVerifyLine, renderVerifySummary, type VerifyResult } from '../../render/verify-text.js';

export interface VerifyArgs {
  config: string;
  target?: string;
  storage?: string;
  deep: boolean;
  json: boolean;
}

/** `bkp verify [T] [--deep]`: every good backup read back against its manifest's checksum. */
export async function verifyCommand(args: VerifyArgs): Promise<number> {
  const policy = await loadPolicyOrFail(args.config);
  const targets = selectTargets(policy, args.target ? [args.target] : undefined);
  const catalog = await readCatalog(policy, targets, args.storage);
  const style = stdoutStyle();
  const results: VerifyResult[] = [];
  for (const o of catalog.observed) {
    const storage = catalog.storages.get(o.name);
    for (const b of o.backups) {
      const base = { storage: o.name, target: b.target, unit: b.unit, id: b.id, started_at: b.started_at };
      const problem = catalog.unreadable.get(`${o.name}:${b.key}`);
      let r: VerifyResult;
      if (!b.manifest || problem) {
        r = { ...base, ok: false, problems: [problem ?? 'manifest missing'], details: [] };
      } else if (!storage) {
        // An engine catalog (Elasticsearch snapshots): the engine checks its own backup.
        const target = policy.targets[b.target]!;
        const provider = await loadProvider(target.engine);
        const v = provider.verifyCatalogBackup ? await provider.verifyCatalogBackup(target, b, args.deep) : { problems: [`engine ${target.engine} cannot verify`], details: [] };
        r = { ...base, ok: v.problems.length === 0, ...v };
      } else {
        const target = policy.targets[b.target]!;
        const deep = args.deep ? { provider: await loadProvider(target.engine), target } : undefined;
        const { ok, problems, details } = await checkArtifact(storage, b, b.manifest, deep, { key: policy.storages[o.name]?.encryption?.key });
        r = { ...base, ok, problems, details };
      }
      results.push(r);
      if (!args.json) write(renderVerifyLine(r, style));
    }
  }
  const incomplete = catalog.observed.flatMap((o) => o.incomplete);
  write(args.json ? renderVerifyJson(results, incomplete) : renderVerifySummary(results, incomplete, args.deep, style));
  return results.some((r) => !r.ok) ? 1 : 0;
}
