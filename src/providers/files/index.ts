import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../core/diagnostics.js';
import type { Target } from '../../policy/types.js';
import type { Provider, RestoreOptions } from '../types.js';
import { extractArchive } from './extract.js';
import { planInPlace } from './in-place.js';
import { inspectArchive } from './inspect.js';
import { formatBytes } from '../../render/style.js';
import { createArchive } from './pack.js';
import { resolveRoots } from './roots.js';
import { filesSettings } from './settings.js';

/** A files target has a single unit: all its paths go into one archive. */
const UNIT = 'files';

function checkUnit(target: Target, unit: string): void {
  if (unit !== UNIT) throw new UserError(`target "${target.name}" (engine files) has one unit, "${UNIT}", not "${unit}"`);
}

/** Holds data = exists and, for a folder, is not empty. */
async function holdsData(p: string): Promise<boolean> {
  const s = await lstat(p).catch(() => undefined);
  if (!s) return false;
  if (!s.isDirectory()) return true;
  return (await readdir(p)).length > 0;
}

/** The roots a backup came from, as recorded in its manifest (`facts.paths`). */
function archivedRoots(facts: Record<string, unknown>): string[] {
  const p = facts.paths;
  return Array.isArray(p) ? p.filter((x): x is string => typeof x === 'string' && path.isAbsolute(x)) : [];
}

/**
 * Folders, files and globs as one tar.gz (the Brainwave runbook: docker volumes in a single
 * archive, restore "overrides everything"). Hooks (stop/start the services) are run by apply.
 */
export const filesProvider: Provider = {
  engine: 'files',

  async discoverUnits(target) {
    await resolveRoots(target); // a path matching nothing is reported at plan time, not at 23:00
    return [UNIT];
  },

  async backup(target, unit, ctx) {
    checkUnit(target, unit);
    const roots = await resolveRoots(target);
    return createArchive(target.name, roots, filesSettings(target).exclude, ctx);
  },

  async restoreTarget(target, unit, opts: RestoreOptions) {
    checkUnit(target, unit);
    if (opts.to !== undefined) {
      const destination = path.resolve(opts.to);
      const s = await lstat(destination).catch(() => undefined);
      if (s && !s.isDirectory()) throw new UserError(`target "${target.name}": --to ${destination} is a file, not a folder`);
      return { destination, hasData: await holdsData(destination) };
    }
    // In place: the archive holds absolute paths, so the destination is `/` and what would be
    // overwritten is the target's roots (missing ones are fine: that is why one restores).
    const roots = await resolveRoots(target, { allowMissing: true });
    const flags = await Promise.all(roots.map(holdsData));
    return { destination: `the live data of target ${target.name} (${roots.join(', ')})`, hasData: flags.some(Boolean), safety: { unit: UNIT } };
  },

  async restore(target, unit, artifact, manifest, opts, ctx) {
    const { destination, hasData } = await this.restoreTarget(target, unit, opts);
    // The caller checks too (and takes a safety backup first); this is the last line of defence.
    // In place, also look at the roots the backup was taken from, which the policy may no longer list.
    const archivedHaveData = opts.to === undefined && (await Promise.all(archivedRoots(manifest.facts).map(holdsData))).some(Boolean);
    if ((hasData || archivedHaveData) && !opts.force) {
      const where = opts.to === undefined ? 'its live paths already hold' : `${destination} already holds`;
      throw new UserError(`target "${target.name}": ${where} data; restoring would overwrite it (use --force)`);
    }
    if (opts.to !== undefined) {
      const files = await extractArchive(target.name, artifact, { cwd: destination, realCwd: destination, log: ctx.log });
      return { destination, details: [`${files} files restored`] };
    }
    const plan = await planInPlace(target.name, archivedRoots(manifest.facts));
    try {
      const files = await extractArchive(target.name, artifact, { cwd: plan.cwd, realCwd: '/', rewrite: plan.rewrite, log: ctx.log });
      return { destination, details: [`${files} files restored`] };
    } finally {
      await plan.close();
    }
  },

  async verifyDeep(target, artifact, manifest) {
    const summary = await inspectArchive(target.name, artifact);
    const expected = manifest.facts.file_count;
    if (typeof expected === 'number' && expected !== summary.files) {
      throw new UserError(`target "${target.name}": the archive holds ${summary.files} files but its manifest says ${expected}`);
    }
    return [`tar.gz: ${summary.entries} entries, ${formatBytes(summary.bytes)} uncompressed`];
  },
};
