import { createHash } from 'node:crypto';
import type { ResourceValue } from '../types.js';

/**
 * A digest of the fields bkp wrote into a resource, sensitive ones left out (a hash of a
 * password has no business on a server). bkp stores it in its mark; when the live fields no
 * longer match it, someone edited the resource by hand (drift), otherwise the policy changed.
 */
export function specDigest(spec: Record<string, ResourceValue>, sensitive: readonly string[]): string {
  const hash = createHash('sha256');
  for (const k of Object.keys(spec).sort()) {
    if (sensitive.includes(k)) continue;
    hash.update(`${k}=${JSON.stringify(spec[k])}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}
