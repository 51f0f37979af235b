import { readFileSync } from 'node:fs';

/** bkp's version, from package.json (dist/cli/ and src/cli/ are both two levels down). */
export function bkpVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
