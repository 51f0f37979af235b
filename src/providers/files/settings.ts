import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';

/** The files engine's own fields (DESIGN §6): `paths` (folders, files, globs) and `exclude`. */
export interface FilesSettings {
  /** As written: relative to the policy file's folder, or absolute. */
  paths: string[];
  /** Globs matched against paths relative to each root (see exclude.ts). */
  exclude: string[];
}

function stringList(target: Target, field: string, value: unknown, required: boolean): string[] {
  if (value === undefined && !required) return [];
  const ok = Array.isArray(value) && value.every((v): v is string => typeof v === 'string' && v.trim() !== '');
  if (!ok || (required && value.length === 0)) {
    throw new UserError(`target "${target.name}": "${field}" must be a ${required ? 'non-empty ' : ''}list of paths`);
  }
  return value;
}

/** Reads the settings defensively: the schema checks them too, but providers may be called directly. */
export function filesSettings(target: Target): FilesSettings {
  return {
    paths: stringList(target, 'paths', target.settings.paths, true),
    exclude: stringList(target, 'exclude', target.settings.exclude, false),
  };
}
