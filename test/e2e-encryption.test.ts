import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bkp, lastLine, type CliResult } from './helpers/cli.js';
import { filesUnder, workspace } from './helpers/workspace.js';

const KEY = 'k3y-that-must-never-leak-7f3a9c1e';
const env = { BKP_KEY: KEY };
const PLAIN = 'TOP SECRET LINE: the launch code is 0000, known plaintext for the test\n';

function policy(storage: string): string {
  return `version: 1
storage:
  local: ${storage}
schedules:
  nightly:
    cron: "0 23 * * *"
    retention: { keep_daily: 6 }
targets:
  app:
    engine: files
    paths: [./data]
    schedule: nightly
`;
}
const ENCRYPTED = '{ type: local, path: ./backups, compression: zstd, encryption: { key: "${env:BKP_KEY}" } }';

/**
 * A files target on local storage with `encryption` and `compression: zstd`, through the CLI:
 * apply, verify, verify --deep and restore work; the key and the plaintext appear nowhere; a
 * wrong key, a missing key and a tampered artifact fail with clear errors.
 */
describe('a files target on an encrypted, zstd-compressed local storage', () => {
  const big = randomBytes(3 * 1024 * 1024 + 4321); // several 1 MiB chunks (written as UTF-8 text by the helper: larger still)
  const w = workspace(() => policy(ENCRYPTED), { 'data/a.txt': 'alpha\n', 'data/secret.txt': PLAIN.repeat(50), 'data/sub/big.bin': big.toString('latin1') });
  const outputs: CliResult[] = [];
  const run = async (args: string[], e: Record<string, string> = env) => {
    const r = await bkp([...args, '-c', w.config], { env: e });
    outputs.push(r);
    return r;
  };
  const backups = path.join(w.dir, 'backups');
  let artifact = '';
  let manifest: Record<string, unknown> = {};
  afterAll(() => w.cleanup());

  beforeAll(async () => {
    const a = await run(['apply', '--auto-approve', '--now', '2026-11-21T23:05:00Z']);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const rel = filesUnder(backups).find((f) => f.startsWith('app/files/') && !f.endsWith('.manifest.json'))!;
    artifact = path.join(backups, rel);
    manifest = JSON.parse(readFileSync(artifact.replace(/\.tar\.gz\.zst\.enc$/, '.manifest.json'), 'utf8')) as Record<string, unknown>;
  });

  it('writes a .tar.gz.zst.enc artifact whose manifest records the storage encoding and both checksums', () => {
    expect(path.basename(artifact)).toMatch(/^20261121T230500Z-[0-9a-f]{12}\.tar\.gz\.zst\.enc$/);
    const bytes = readFileSync(artifact);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('BKPENC1\n');
    expect(manifest).toMatchObject({ compression: 'zstd', encryption: 'aes-256-gcm-chunked/1', size: bytes.length, artifact: path.basename(artifact), facts: { engine_compression: 'gzip', file_count: 3 } });
    expect(manifest.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(manifest.content_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.content_sha256).not.toBe(manifest.sha256);
    expect(manifest.content_size).toBeGreaterThan(big.length);
  });

  it('the artifact holds no plaintext of a known file', () => {
    const bytes = readFileSync(artifact);
    expect(bytes.includes('launch code')).toBe(false);
    expect(bytes.includes(readFileSync(path.join(w.dir, 'data/sub/big.bin')).subarray(1000, 1064))).toBe(false);
  });

  it('verify and verify --deep say OK', async () => {
    const v = await run(['verify']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^OK {6}local: app\/files [0-9a-f]{12} /m);
    expect(lastLine(v.stdout)).toBe('1 backups verified.');
    const d = await run(['verify', '--deep']);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).toMatch(/OK {6}local: app\/files [0-9a-f]{12} .* — tar\.gz: \d+ entries/);
    expect(lastLine(d.stdout)).toBe('1 backups verified (deep).');
  });

  it('restore gives back identical files', async () => {
    const out = path.join(w.dir, 'restored');
    const r = await run(['restore', 'app', '--to', out]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const data = path.join(out, w.dir.slice(1), 'data');
    expect(filesUnder(data)).toEqual(['a.txt', 'secret.txt', 'sub/big.bin']);
    expect(readFileSync(path.join(data, 'secret.txt'), 'utf8')).toBe(PLAIN.repeat(50));
    expect(readFileSync(path.join(data, 'sub/big.bin')).equals(readFileSync(path.join(w.dir, 'data/sub/big.bin')))).toBe(true);
  });

  it('a wrong key is reported as one, by verify and restore, and nothing is restored', async () => {
    const id = String(manifest.id);
    const wrong = { BKP_KEY: 'not-the-right-key-at-all' };
    const v = await run(['verify'], wrong);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(`storage local: wrong encryption key for backup ${id}`);
    const out = path.join(w.dir, 'wrong-key');
    const r = await run(['restore', 'app', '--to', out], wrong);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`storage local: wrong encryption key for backup ${id}; nothing was restored`);
    expect(existsSync(out)).toBe(false);
  });

  it('without a key in the policy: verify checks the stored bytes, restore says the key is missing', async () => {
    const noKey = path.join(w.dir, 'no-key.yaml');
    writeFileSync(noKey, policy('{ type: local, path: ./backups, compression: zstd }'));
    const v = await bkp(['verify', '-c', noKey]);
    outputs.push(v);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain('contents not decrypted (no key)');
    const deep = await bkp(['verify', '--deep', '-c', noKey]);
    outputs.push(deep);
    expect(deep.code).toBe(1);
    expect(deep.stdout).toMatch(/is encrypted \(aes-256-gcm-chunked\/1\) but storage local has no encryption key in the policy/);
    const r = await bkp(['restore', 'app', '--to', path.join(w.dir, 'no-key-out'), '-c', noKey]);
    outputs.push(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/storage local: backup [0-9a-f]{12} is encrypted \(aes-256-gcm-chunked\/1\) but storage local has no encryption key in the policy/);
    expect(existsSync(path.join(w.dir, 'no-key-out'))).toBe(false);
  });

  it('the key appears in no output, no manifest, no artifact and no run record', () => {
    for (const o of outputs) {
      expect(o.stdout).not.toContain(KEY);
      expect(o.stderr).not.toContain(KEY);
    }
    for (const f of filesUnder(backups)) expect(readFileSync(path.join(backups, f)).includes(KEY), f).toBe(false);
  });

  it('one flipped byte: verify, verify --deep and restore fail with the clear error', async () => {
    const bytes = readFileSync(artifact);
    bytes[50 + 4 + 1024 * 1024 + 16 + 4 + 777]! ^= 0x20; // inside chunk 1
    writeFileSync(artifact, bytes);
    const id = String(manifest.id);
    for (const args of [['verify'], ['verify', '--deep']]) {
      const v = await run(args);
      expect(v.code).toBe(1);
      expect(v.stdout).toMatch(/FAILED {2}local: app\/files [0-9a-f]{12} \(2026-11-21T23:05:00.000Z\): sha256 [0-9a-f]{16}… does not match the manifest's/);
      expect(v.stdout).toContain(`storage local: backup ${id} was tampered with or is corrupt (chunk 1 at byte `);
      expect(lastLine(v.stdout)).toBe('1 of 1 backups failed verification.');
    }
    const out = path.join(w.dir, 'tampered');
    const r = await run(['restore', 'app', '--to', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backup [0-9a-f]{12} fails its checksum, nothing was restored: sha256 .*was tampered with or is corrupt \(chunk 1 /);
    expect(existsSync(out)).toBe(false);
  });
});
