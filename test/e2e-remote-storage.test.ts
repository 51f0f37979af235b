import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bkp, lastLine } from './helpers/cli.js';
import { filesUnder, workspace } from './helpers/workspace.js';
import { startS3, type S3TestServer } from './helpers/s3-server.js';
import { startSshd, type SshdServer } from './helpers/sshd-server.js';

/**
 * The OpenCRVS pattern (seed 004: every night's backups copied to a separate server over SSH)
 * through the CLI: a files target on local storage with copies to a real sshd (SFTP) and to an
 * S3-compatible server, restore from each, and a wrong host key refused.
 */
describe('remote storage through the CLI: local + sftp + s3', () => {
  let s3: S3TestServer;
  let sshd: SshdServer;
  let w: ReturnType<typeof workspace>;
  let env: Record<string, string>;

  beforeAll(async () => {
    [s3, sshd] = await Promise.all([startS3(), startSshd()]);
    w = workspace(
      () => `version: 1
storage:
  local: { type: local, path: ./backups }
  offsite:
    type: sftp
    host: 127.0.0.1
    port: ${sshd.port}
    user: ${sshd.user}
    path: ${sshd.root}
    private_key_file: ${sshd.privateKeyFile}
    host_key: "\${env:OFFSITE_HOST_KEY}"
    retention: { keep_last: 2 }
  bucket:
    type: s3
    bucket: ${s3.bucket}
    prefix: prod/
    endpoint: ${s3.endpoint}
schedules:
  nightly: { cron: "0 23 * * *", retention: { keep_daily: 7 } }
targets:
  app:
    engine: files
    paths: [./data]
    storage: [local, offsite, bucket]
    schedule: nightly
`,
    );
    env = { OFFSITE_HOST_KEY: sshd.hostKeyFingerprint, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  }, 120_000);
  afterAll(async () => {
    await Promise.all([s3?.stop(), sshd?.stop()]);
    w?.cleanup();
  });

  it('backs up, copies to sftp and s3, keeps each to its retention, and restores from each', async () => {
    for (const day of ['2026-11-19', '2026-11-20', '2026-11-21']) {
      const a = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', `${day}T23:05:00Z`], { env });
      expect(a.code, a.stdout + a.stderr).toBe(0);
    }
    expect(filesUnder(path.join(sshd.root, 'app', 'files')).filter((f) => f.endsWith('.tar.gz'))).toHaveLength(2);
    const v = await bkp(['verify', '-c', w.config, '--deep'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(lastLine(v.stdout)).toBe('8 backups verified (deep).'); // 3 local + 2 sftp + 3 s3
    expect((await bkp(['plan', '-c', w.config, '--detailed-exitcode', '--now', '2026-11-21T23:05:00Z'], { env })).code).toBe(0);

    for (const storage of ['offsite', 'bucket']) {
      const out = path.join(w.dir, `from-${storage}`);
      const r = await bkp(['restore', 'app', '-c', w.config, '--storage', storage, '--to', out], { env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(readFileSync(path.join(out, w.dir.slice(1), 'data', 'sub', 'b.txt'), 'utf8')).toBe('beta\n');
    }
  }, 180_000);

  it('a wrong host key is refused, naming what was seen', async () => {
    const p = await bkp(['apply', '-c', w.config, '--auto-approve', '--now', '2026-11-22T23:05:00Z'], { env: { ...env, OFFSITE_HOST_KEY: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    expect(p.code).toBe(1);
    expect(p.stderr + p.stdout).toContain(sshd.hostKeyFingerprint);
    writeFileSync(path.join(w.dir, 'unused'), '');
  });
});
