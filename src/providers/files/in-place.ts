import { randomBytes } from 'node:crypto';
import { mkdir, realpath, symlink, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/diagnostics.js';
import { memberName } from './roots.js';

/** How to extract an archive back where it came from. */
export interface InPlacePlan {
  /** Extraction folder handed to node-tar. */
  cwd: string;
  /** Member name → path relative to `cwd`, or undefined for a member outside the backed-up roots. */
  rewrite: (member: string) => string | undefined;
  /** Removes what `cwd` needed. */
  close: () => Promise<void>;
}

/**
 * Restoring in place means extracting at `/`, which node-tar cannot do as such:
 * - with cwd `/` it rejects every entry ("path escaped extraction target": its check builds `//`);
 * - it walks every folder between its cwd and an entry with lstat, and refuses a symlinked one
 *   (or, with `unlink`, replaces it by an empty folder). The folders *above* a root are not in the
 *   archive and are the host's business (`/var/lib/docker` is often a symlink to a data disk): like
 *   GNU tar, follow them.
 * So: create each root's parent (following symlinks), resolve it to its real path, rewrite the
 * members under that real path, and extract relative to a temporary symlink to `/`. Inside the
 * roots, node-tar's own symlink protections still apply.
 *
 * @param roots absolute roots recorded in the manifest (`facts.paths`)
 */
export async function planInPlace(target: string, roots: string[]): Promise<InPlacePlan> {
  if (roots.length === 0) {
    throw new UserError(`target "${target}": this backup does not record the paths it was taken from; restore it with --to FOLDER`);
  }
  const mapping: { from: string; to: string }[] = [];
  for (const root of roots) {
    const parent = path.dirname(root);
    await mkdir(parent, { recursive: true });
    const real = path.join(await realpath(parent), path.basename(root));
    mapping.push({ from: memberName(root), to: memberName(real) });
  }
  // Longest first, so a member goes to the most specific root.
  mapping.sort((a, b) => b.from.length - a.from.length);
  const cwd = path.join(os.tmpdir(), `bkp-restore-${randomBytes(6).toString('hex')}`);
  await symlink('/', cwd);
  return {
    cwd,
    rewrite(member) {
      const m = mapping.find(({ from }) => from === '.' || member === from || member.startsWith(`${from}/`));
      if (!m) return undefined;
      return m.from === '.' ? member : m.to + member.slice(m.from.length);
    },
    close: () => unlink(cwd).catch(() => undefined),
  };
}
