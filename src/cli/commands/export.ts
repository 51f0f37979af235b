import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { bkpVersion, loadPolicyOrFail, write } from '../context.js';
import { readYaml } from '../../policy/read-yaml.js';
import type { Policy } from '../../policy/types.js';
import { renderCrontab, shq } from '../../render/export-crontab.js';
import { renderK8s } from '../../render/export-k8s.js';

/** The defaults `bkp export` flags take (main.ts wires them). */
export function exportDefaults(): { image: string; namespace: string; configMap: string; secret: string } {
  return { image: `ghcr.io/bkp-dev/bkp:${bkpVersion()}`, namespace: 'default', configMap: 'bkp-policy', secret: 'bkp-secrets' };
}

export interface ExportArgs {
  config: string;
  format: 'crontab' | 'k8s';
  /** Default `ghcr.io/bkp-dev/bkp:<version>` (`bkpVersion()`). */
  image: string;
  /** Default `default`. */
  namespace: string;
  /** Default `bkp-policy`. */
  configMap: string;
  /** Default `bkp-secrets`. */
  secret: string;
  /** crontab: where each line `cd`s to; default the policy file's folder. */
  workdir?: string;
}

/**
 * `bkp export crontab|k8s`: the policy's schedules for an existing scheduler, on stdout.
 * crontab lines start this very bkp by its absolute path, and the crontab's PATH starts with the
 * folder of the node that runs it, since cron's own PATH rarely has either.
 */
export async function exportCommand(args: ExportArgs): Promise<number> {
  const policy = await loadPolicyOrFail(args.config);
  const written = await readWritten(policy);
  if (args.format === 'crontab') {
    const configPath = path.resolve(args.config);
    write(renderCrontab(policy, {
      bkpCommand: bkpExecutable(),
      configPath,
      workdir: args.workdir ? path.resolve(args.workdir) : path.dirname(configPath),
      pathEnv: [...new Set([path.dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"])].join(":"),
      written,
    }));
  } else {
    write(renderK8s(policy, { image: args.image, namespace: args.namespace, configMap: args.configMap, secret: args.secret, written }));
  }
  return 0;
}

/**
 * The policy as written (before interpolation), so the exports can name the variables hooks and
 * storages use. Undefined if the file changed since it was loaded.
 */
async function readWritten(policy: Policy): Promise<unknown> {
  const bytes = await readFile(policy.file);
  if (createHash('sha256').update(bytes).digest('hex') !== policy.digest) return undefined;
  return readYaml(bytes.toString('utf8'), policy.file).value;
}

/** The script that started this process (bin/bkp), when it is one; else `bkp` from PATH. */
function bkpExecutable(): string {
  const script = process.argv[1];
  return script && path.basename(script) === 'bkp' ? shq(path.resolve(script)) : 'bkp';
}
