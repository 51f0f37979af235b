import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bkp, lastLine, ROOT, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';

/** The README's first command, on a copy of examples/ so the repository stays clean. */
describe('examples/quickstart.yaml, as the README runs it', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  cpSync(path.join(ROOT, 'examples'), path.join(t.dir, 'examples'), { recursive: true });
  const config = path.join(t.dir, 'examples', 'quickstart.yaml');
  const sample = path.join(t.dir, 'examples', 'sample-data');

  it('validates, applies into ./backups, then has no changes', async () => {
    expect((await bkp(['validate', '-c', config], { cwd: t.dir })).stdout.trim()).toBe(`${config}: valid`);
    const a = await bkp(['apply', '-c', 'examples/quickstart.yaml', '--auto-approve'], { cwd: t.dir });
    expect(a.code, a.stderr).toBe(0);
    expect(lastLine(a.stdout)).toBe('Apply complete! Resources: 1 created, 0 changed, 0 deleted.');
    expect(filesUnder(path.join(t.dir, 'backups', 'sample', 'files'))).toHaveLength(2);
    const p = await bkp(['plan', '-c', 'examples/quickstart.yaml', '--detailed-exitcode'], { cwd: t.dir });
    expect(p.code).toBe(0);
    expect(lastLine(p.stdout)).toBe('No changes.');
  });

  it('an on-demand backup after a change, restored into a folder, gives the files back', async () => {
    const notes = filesUnder(sample);
    writeFileSync(path.join(sample, 'README.txt'), 'changed after the first backup\n');
    expect((await bkp(['backup', 'sample', '-c', config])).code).toBe(0);
    const out = path.join(t.dir, 'restored');
    const r = await bkp(['restore', 'sample', '-c', config, '--to', out]);
    expect(r.code, r.stderr).toBe(0);
    const restored = path.join(out, sample.slice(1));
    expect(filesUnder(restored)).toEqual(notes);
    expect(readFileSync(path.join(restored, 'README.txt'), 'utf8')).toBe('changed after the first backup\n');
    const list = await bkp(['list', 'sample', '-c', config]);
    expect(list.stdout).toMatch(/on-demand .* on-demand snapshot \(keep_on_demand 2\)/);
  });
});
