import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The CLI tests run the built dist/ as a user would. When a source file is newer than the build
 * (someone ran `npx vitest` without `npm test`), rebuild first rather than test stale code.
 */
export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  const built = path.join(root, 'dist', 'cli', 'main.js');
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs)));
  const sources = Math.max(newest(path.join(root, 'src')), newest(path.join(root, 'schemas')), newest(path.join(root, 'scripts')));
  if (sources > builtAt) {
    // The same steps as `npm run build`: compile, then precompile the policy schema.
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
    execFileSync(process.execPath, [path.join(root, 'scripts', 'compile-schema.mjs')], { stdio: 'inherit', cwd: root });
  }
}
