import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { bkp, lastLine, ROOT, tempDir } from './helpers/cli.js';
import { filesUnder } from './helpers/workspace.js';

/**
 * Seed 003 (Brainwave docker volumes) end to end with examples/brainwave-volumes.yaml as shipped:
 * stop the services, one timestamped archive of every volume, start the services; restore
 * overrides everything. `brainwave` is a stand-in script that records its calls and writes the
 * service state into a volume, so the archive shows whether services were stopped when it was made.
 */
describe('seed 003: Brainwave docker volumes', () => {
  const t = tempDir();
  const volumes = path.join(t.dir, 'volumes');
  const safe = path.join(t.dir, 'safe');
  const bin = path.join(t.dir, 'bin');
  const calls = path.join(t.dir, 'calls.log');
  const config = path.join(t.dir, 'brainwave-volumes.yaml');
  let env: Record<string, string>;

  beforeAll(() => {
    for (const [rel, content] of Object.entries({
      'config/igrc.properties': 'db.url=jdbc:postgresql://db/igrc\n',
      'certs/server.pem': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      'project/main.project': '<project name="demo"/>\n',
      'logs/brainwave.log': 'started\n',
      'state/services': 'running\n',
    })) {
      mkdirSync(path.dirname(path.join(volumes, rel)), { recursive: true });
      writeFileSync(path.join(volumes, rel), content);
    }
    mkdirSync(bin);
    writeFileSync(
      path.join(bin, 'brainwave'),
      `#!/bin/sh\necho "$1" >> ${calls}\nif [ "$1" = stop ] && [ -n "$FAIL_STOP" ]; then echo "cannot stop: docker daemon not reachable" >&2; exit 3; fi\n[ "$1" = stop ] && echo stopped > ${volumes}/state/services\n[ "$1" = start ] && echo running > ${volumes}/state/services\nexit 0\n`,
    );
    chmodSync(path.join(bin, 'brainwave'), 0o755);
    copyFileSync(path.join(ROOT, 'examples', 'brainwave-volumes.yaml'), config);
    env = { BRAINWAVE_VOLUMES: volumes, BRAINWAVE_BACKUP_DIR: safe, PATH: `${bin}:${process.env.PATH}` };
  });
  afterAll(() => t.cleanup());

  it('the shipped example validates', async () => {
    const v = await bkp(['validate', '-c', config], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('stops the services, writes one timestamped archive of all volumes, starts them again', async () => {
    const a = await bkp(['apply', '-c', config, '--auto-approve', '--now', '2026-11-21T02:30:00Z'], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(readFileSync(calls, 'utf8')).toBe('stop\nstart\n');
    expect(readFileSync(path.join(volumes, 'state/services'), 'utf8')).toBe('running\n');
    const archives = filesUnder(safe).filter((f) => f.endsWith('.tar.gz'));
    expect(archives).toEqual([expect.stringMatching(/^brainwave\/files\/20261121T023000Z-[0-9a-f]{12}\.tar\.gz$/)]);

    // Restore into a new folder: every volume is there, and the state file shows the services
    // were stopped while the archive was made.
    const out = path.join(t.dir, 'restored');
    const r = await bkp(['restore', 'brainwave', '-c', config, '--to', out], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rel = volumes.slice(1);
    expect(filesUnder(path.join(out, rel))).toEqual(['certs/server.pem', 'config/igrc.properties', 'logs/brainwave.log', 'project/main.project', 'state/services']);
    expect(readFileSync(path.join(out, rel, 'state/services'), 'utf8')).toBe('stopped\n');
    expect(readFileSync(path.join(out, rel, 'config/igrc.properties'), 'utf8')).toBe('db.url=jdbc:postgresql://db/igrc\n');

    // The folder is not empty now: a second restore into it is refused without --force.
    const again = await bkp(['restore', 'brainwave', '-c', config, '--to', out], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${out} already holds data and restoring overwrites it: run again with --force`);
  });

  it('after hooks run even when the backup fails, so the services come back', async () => {
    writeFileSync(calls, '');
    const a = await bkp(['apply', '-c', config, '--auto-approve', '--now', '2026-11-22T02:30:00Z'], { env: { ...env, FAIL_STOP: '1' } });
    expect(a.code).toBe(1);
    expect(readFileSync(calls, 'utf8')).toBe('stop\nstart\n');
    expect(a.stdout).toContain('brainwave/files: backup: FAILED');
    expect(a.stdout).toContain('before hook "brainwave stop" exited with code 3: cannot stop: docker daemon not reachable');
    const runs = await bkp(['list', '--runs', '-c', config], { env });
    expect(runs.stdout.split('\n')[1]).toMatch(/failed\s+apply\s+brainwave/);
  });

  it('restore in place overrides everything, after a safety backup, and only with --force', async () => {
    writeFileSync(path.join(volumes, 'config/igrc.properties'), 'db.url=BROKEN\n');
    writeFileSync(path.join(volumes, 'project/new.project'), 'made after the backup\n');
    const refused = await bkp(['restore', 'brainwave', '-c', config], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`the live data of target brainwave (${volumes}/certs, ${volumes}/config, ${volumes}/logs, ${volumes}/project, ${volumes}/state) already holds data and restoring overwrites it: run again with --force (bkp first takes a safety backup)`);
    expect(readFileSync(path.join(volumes, 'config/igrc.properties'), 'utf8')).toBe('db.url=BROKEN\n');

    // "a chosen day": the newest good backup at or before 2026-11-21.
    const r = await bkp(['restore', 'brainwave', '-c', config, '--backup', '2026-11-21', '--force', '--now', '2026-11-22T09:00:00Z'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const safety = /Safety backup ([0-9a-f]{12}) of brainwave\/files taken \(on-demand/.exec(r.stdout);
    expect(safety, r.stdout).not.toBeNull();
    expect(readFileSync(path.join(volumes, 'config/igrc.properties'), 'utf8')).toBe('db.url=jdbc:postgresql://db/igrc\n');

    // The safety backup holds the state before the restore, and is listed as on-demand.
    const list = JSON.parse((await bkp(['list', 'brainwave', '-c', config, '--json'], { env })).stdout) as { backups: { id: string; kind: string }[] };
    expect(list.backups.find((b) => b.id === safety![1])?.kind).toBe('on_demand');
    const out = path.join(t.dir, 'safety');
    expect((await bkp(['restore', 'brainwave', '-c', config, '--backup', safety![1]!, '--to', out], { env })).code).toBe(0);
    expect(readFileSync(path.join(out, volumes.slice(1), 'config/igrc.properties'), 'utf8')).toBe('db.url=BROKEN\n');
    expect(lastLine((await bkp(['verify', '-c', config, '--deep'], { env })).stdout)).toBe('2 backups verified (deep).');
  });
});
