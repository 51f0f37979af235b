import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Policy } from '../../policy/types.js';
import type { ObservedStorage } from '../../planner/types.js';
import { loadPolicyFromText } from '../../policy/load.js';
import { renderDiagnostics } from '../../render/diagnostics.js';
import { hasErrors, UserError } from '../../core/diagnostics.js';
import { diffPolicies } from '../../planner/policy-diff.js';
import { renderDiffJson, renderDiffMarkdown, renderDiffText } from '../../render/diff.js';
import { openStorage } from '../../storage/registry.js';
import { observeStorage } from '../../storage/observe-storage.js';
import { clockFrom, stdoutStyle, write } from '../context.js';

const run = promisify(execFile);

export interface DiffArgs {
  old?: string;
  new?: string;
  config: string;
  baseRef?: string;
  format: 'text' | 'markdown' | 'json';
  now?: string;
  detailedExitcode: boolean;
  impact: boolean;
}

/**
 * `bkp diff OLD NEW` (or `--base-ref REF -c NEW`): what a policy change does, for review. With
 * the catalog readable, it says how many existing backups the new retention would prune.
 */
export async function diffCommand(args: DiffArgs): Promise<number> {
  const newFile = args.new ?? (args.old && !args.baseRef ? undefined : args.config);
  if (!newFile) throw new UserError('bkp diff needs OLD and NEW policy files, or --base-ref REF with -c NEW');
  const newText = await readText(newFile);
  const oldText = args.baseRef ? await fromGit(args.baseRef, newFile) : await readText(args.old ?? '');
  // OLD is read as if it were at NEW's path, so relative paths resolve to the same places.
  const oldP = await load(oldText, newFile, args.baseRef ? `${args.baseRef}:${newFile}` : (args.old ?? ''));
  const newP = await load(newText, newFile, newFile);
  const now = clockFrom(args).now();

  let catalog: ObservedStorage[] | undefined;
  let unknown: string | undefined;
  if (args.impact) {
    try {
      catalog = await readCatalogs(newP, oldP);
      const broken = catalog.find((c) => c.error);
      if (broken) unknown = broken.error;
    } catch (err) {
      unknown = (err as Error).message;
    }
  }
  const diff = diffPolicies(oldP, newP, unknown ? undefined : catalog, now, unknown ?? (args.impact ? undefined : 'not computed (--no-impact)'));
  diff.old_file = args.baseRef ? `${args.baseRef}:${newFile}` : (args.old ?? '');
  write(args.format === 'json' ? renderDiffJson(diff) : args.format === 'markdown' ? renderDiffMarkdown(diff) : renderDiffText(diff, stdoutStyle()));
  return args.detailedExitcode && diff.summary.lost > 0 ? 2 : 0;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read policy file "${file}": ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

async function fromGit(ref: string, file: string): Promise<string> {
  try {
    const { stdout: top } = await run('git', ['rev-parse', '--show-toplevel'], { cwd: path.dirname(path.resolve(file)) });
    const rel = path.relative(top.trim(), path.resolve(file)).split(path.sep).join('/');
    const { stdout } = await run('git', ['show', `${ref}:${rel}`], { cwd: top.trim(), maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new UserError(`--base-ref ${ref}: cannot read ${file} from git: ${msg}`);
  }
}

/**
 * A variable the CI job does not have (a production secret on a pull request) must not stop a
 * review: it reads as its own `${env:NAME}` text, which only secrets ever hold.
 */
const lenientEnv = new Proxy(process.env, { get: (env, name: string) => env[name] ?? `\${env:${name}}` });

async function load(text: string, file: string, label: string): Promise<Policy> {
  const { policy, diagnostics } = await loadPolicyFromText(text, file, { env: lenientEnv });
  if (!policy || hasErrors(diagnostics)) {
    throw new UserError(`policy ${label} has errors:\n${renderDiagnostics(diagnostics, 'text')}`);
  }
  return policy;
}

/** The catalogs of NEW's storages, for NEW's targets and the ones OLD had there (to count what a removal leaves). */
async function readCatalogs(p: Policy, old: Policy): Promise<ObservedStorage[]> {
  const out: ObservedStorage[] = [];
  const targets = [...Object.values(p.targets), ...Object.values(old.targets).filter((t) => !p.targets[t.name])];
  for (const name of [...new Set(Object.values(p.targets).flatMap((t) => t.storage))]) {
    const storage = await openStorage(p.storages[name]!);
    out.push(await observeStorage(storage, targets.filter((t) => t.storage.includes(name)).map((t) => t.name)));
  }
  return out;
}
