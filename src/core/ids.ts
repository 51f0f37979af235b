import { randomBytes } from 'node:crypto';

/** A new backup or run id: 12 hex characters, short enough to type, long enough never to collide in one unit. */
export function newId(): string {
  return randomBytes(6).toString('hex');
}
