import { loadPolicyOrFail, selectTargets, stdoutStyle, write } from '../context.js';
import { readCatalog } from '../catalog.js';
import { checkArtifact } from '../../apply/check-artifact.js';
import { loadProvider } from '../../providers/registry.js';
import { redact } from '../../core/secrets.js';

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
  const results: { storage: string; target: string; unit: string; id: string; ok: boolean; problems: string[]; details: string[] }[] = [];
  for (const o of catalog.observed) {
    const storage = catalog.storages.get(o.name)!;
    for (const b of o.backups) {
      const base = { storage: o.name, target: b.target, unit: b.unit, id: b.id };
      const problem = catalog.unreadable.get(`${o.name}:${b.key}`);
      if (!b.manifest || problem) {
        results.push({ ...base, ok: false, problems: [problem ?? 'manifest missing'], details: [] });
        continue;
      }
      const target = policy.targets[b.target]!;
      const deep = args.deep ? { provider: await loadProvider(target.engine), target } : undefined;
      const r = await checkArtifact(storage, b, b.manifest, deep);
      results.push({ ...base, ...r });
      if (!args.json) {
        const head = `${o.name}: ${b.target}/${b.unit} ${b.id} (${b.started_at})`;
        write(r.ok ? `${style.green('OK')}      ${head}${r.details.length ? ` — ${r.details.join('; ')}` : ''}` : `${style.red('FAILED')}  ${head}: ${r.problems.join('; ')}`);
      }
    }
  }
  const failed = results.filter((r) => !r.ok).length;
  const incomplete = catalog.observed.flatMap((o) => o.incomplete);
  if (args.json) write(redact(JSON.stringify({ ok: failed === 0, checked: results.length, failed, results, incomplete }, null, 2)));
  else {
    for (const i of incomplete) write(style.yellow(`INCOMPLETE ${i.storage}: ${i.key} (${i.why}; not a good backup, the next apply cleans it up)`));
    write(failed ? style.red.bold(`${failed} of ${results.length} backups failed verification.`) : style.green.bold(`${results.length} backups verified${args.deep ? ' (deep)' : ''}.`));
  }
  return failed ? 1 : 0;
}
