import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { UserError } from '../../core/diagnostics.js';
import type { Target } from '../../policy/types.js';
import { filesSettings } from './settings.js';

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/**
 * Turns a target's `paths` into absolute roots: plain paths resolved against the policy folder,
 * globs expanded. A path that matches nothing is an error for a backup (a typo would otherwise
 * back up nothing, silently); a restore passes `allowMissing`, since the data being gone is
 * exactly why one restores.
 */
export async function resolveRoots(target: Target, { allowMissing = false } = {}): Promise<string[]> {
  const { paths } = filesSettings(target);
  const found = new Set<string>();
  for (const p of paths) {
    let matches: string[];
    if (isDynamicPattern(p)) {
      matches = await glob(p, {
        cwd: target.baseDir,
        absolute: true,
        onlyFiles: false,
        dot: true,
        expandDirectories: false,
        followSymbolicLinks: false,
      });
    } else {
      const abs = path.resolve(target.baseDir, p);
      matches = allowMissing || (await exists(abs)) ? [abs] : [];
    }
    if (matches.length === 0 && !allowMissing) {
      throw new UserError(`target "${target.name}": path "${p}" matches nothing (relative to ${target.baseDir})`);
    }
    for (const m of matches) found.add(path.resolve(m));
  }
  return withoutNested([...found].sort());
}

/** Drops roots inside other roots: tar would store their files twice. Expects sorted input. */
function withoutNested(sorted: string[]): string[] {
  const out: string[] = [];
  for (const r of sorted) {
    const parent = out.find((o) => o === '/' || r.startsWith(o + '/'));
    if (!parent) out.push(r);
  }
  return out;
}

/** A root as tar stores it: absolute path without the leading `/`, as GNU tar does. */
export function memberName(root: string): string {
  return root === '/' ? '.' : root.replace(/^\/+/, '');
}
