import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { bkp, lastLine } from './helpers/cli.js';
import { filesPolicy, filesUnder, workspace } from './helpers/workspace.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
function ws(...args: Parameters<typeof workspace>) {
  const w = workspace(...args);
  cleanups.push(w.cleanup);
  return w;
}

describe('plan → apply → plan, through the CLI', () => {
  it('first plan has changes (exit 2), apply backs up, the next plan is "No changes." (exit 0)', async () => {
    const w = ws(() => filesPolicy());
    const now = ['--now', '2026-11-21T23:05:00Z'];
    const p1 = await bkp(['plan', '-c', w.config, '--detailed-exitcode', ...now]);
    expect(p1.stderr).toBe('');
    expect(p1.code).toBe(2);
    expect(p1.stdout).toContain('+ backup "app/files" {');
    expect(lastLine(p1.stdout)).toBe('Plan: 1 to create, 0 to change, 0 to delete.');

    const a = await bkp(['apply', '-c', w.config, '--auto-approve', ...now]);
    expect(a.code, a.stderr).toBe(0);
    expect(lastLine(a.stdout)).toMatch(/^Apply complete! Resources: 1 created, 0 changed, 0 deleted\.$/);
    const files = filesUnder(path.join(w.dir, 'backups'));
    expect(files.filter((f) => f.startsWith('app/files/'))).toEqual([
      expect.stringMatching(/^app\/files\/20261121T230500Z-[0-9a-f]{12}\.manifest\.json$/),
      expect.stringMatching(/^app\/files\/20261121T230500Z-[0-9a-f]{12}\.tar\.gz$/),
    ]);
    expect(files.filter((f) => f.startsWith('locks/'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('runs/'))).toEqual([expect.stringMatching(/^runs\/\d{8}T\d{6}Z-[0-9a-f]{12}\.succeeded\.json$/)]);

    const p2 = await bkp(['plan', '-c', w.config, '--detailed-exitcode', ...now]);
    expect(p2.code).toBe(0);
    expect(lastLine(p2.stdout)).toBe('No changes.');
  });

  it('the manifest records size, sha256, times, kind and engine facts', async () => {
    const w = ws(() => filesPolicy());
    await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    const manifestFile = filesUnder(path.join(w.dir, 'backups')).find((f) => f.endsWith('.manifest.json'))!;
    const m = JSON.parse(readFileSync(path.join(w.dir, 'backups', manifestFile), 'utf8'));
    const artifact = readFileSync(path.join(w.dir, 'backups', 'app/files', m.artifact));
    const { createHash } = await import('node:crypto');
    expect(m).toMatchObject({ format: 'bkp-manifest/1', target: 'app', unit: 'files', engine: 'files', kind: 'scheduled', started_at: '2026-11-21T23:05:00.000Z', compression: 'none', size: artifact.length });
    // The archive is already tar.gz: storage-level compression defaults to none, the engine's is a fact.
    expect(m.facts).toMatchObject({ engine_compression: 'gzip' });
    expect(m.sha256).toBe(createHash('sha256').update(artifact).digest('hex'));
    expect(m.facts).toMatchObject({ file_count: 2 });
  });

  it('apply without a TTY and without --auto-approve refuses instead of asking', async () => {
    const w = ws(() => filesPolicy());
    const a = await bkp(['apply', '-c', w.config, '--now', '2026-11-21T23:05:00Z']);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('apply needs confirmation but stdin is not a terminal: run `bkp apply --auto-approve`');
    expect(filesUnder(path.join(w.dir, 'backups')).filter((f) => f.startsWith('app/'))).toEqual([]);
  });

  it('a saved plan applies as written; a stale one is refused', async () => {
    const w = ws(() => filesPolicy());
    const plan = path.join(w.dir, 'tonight.plan');
    const p = await bkp(['plan', '-c', w.config, '--out', plan, '--now', '2026-11-21T23:05:00Z']);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain(`bkp apply ${plan}`);
    const shown = await bkp(['show', plan]);
    expect(lastLine(shown.stdout)).toBe('Plan: 1 to create, 0 to change, 0 to delete.');

    // Another backup lands between plan and apply: the plan is stale.
    const other = await bkp(['backup', 'app', '-c', w.config, '--now', '2026-11-21T23:06:00Z']);
    expect(other.code, other.stderr).toBe(0);
    const stale = await bkp(['apply', plan, '-c', w.config]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('Saved plan is stale: the backups in storage changed since');

    // A fresh plan applies; then editing the policy makes a saved plan stale too.
    await bkp(['plan', '-c', w.config, '--out', plan, '--now', '2026-11-21T23:07:00Z']);
    appendFileSync(w.config, '\n# a comment changes the digest\n');
    const edited = await bkp(['apply', plan, '-c', w.config]);
    expect(edited.code).toBe(1);
    expect(edited.stderr).toContain('Saved plan is stale: the policy');
    await bkp(['plan', '-c', w.config, '--out', plan, '--now', '2026-11-21T23:07:00Z']);
    const ok = await bkp(['apply', plan, '-c', w.config, '--now', '2026-11-21T23:07:00Z']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('--json prints one plan document that matches schemas/plan.schema.json', async () => {
    const w = ws(() => filesPolicy());
    const p = await bkp(['plan', '-c', w.config, '--json', '--now', '2026-11-21T23:05:00Z']);
    const plan = JSON.parse(p.stdout);
    const { Ajv2020 } = await import('ajv/dist/2020.js');
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(JSON.parse(readFileSync(path.resolve('schemas/plan.schema.json'), 'utf8')));
    expect(validate(plan), JSON.stringify(validate.errors)).toBe(true);
    expect(plan).toMatchObject({ format_version: '1', now: '2026-11-21T23:05:00.000Z', summary: { create: 1, update: 0, delete: 0 } });
  });

  it('--target selects targets; an unknown one is an error naming the valid ones', async () => {
    const w = ws(() => filesPolicy());
    const p = await bkp(['plan', '-c', w.config, '--target', 'nope']);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain('unknown target "nope" in');
    expect(p.stderr).toContain('(targets: app)');
  });

  it('a bad policy is reported with FILE:LINE:COL and exit 1', async () => {
    const w = ws(() => filesPolicy().replace('schedule: nightly', 'schedule: nighlty'));
    const p = await bkp(['plan', '-c', w.config]);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(new RegExp(`${w.config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: .*nighlty`));
    writeFileSync(w.config, 'version: 1\ntargets: [\n');
    const v = await bkp(['validate', '-c', w.config, '--format', 'github']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^::error file=.*bkp\.yaml,line=\d+,col=\d+/);
  });
});
