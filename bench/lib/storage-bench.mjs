// The storage section of `npm run bench` (issue 7): a ~2 GiB artifact streamed by bkp to SFTP and
// to S3 against `scp` / `sftp -b` and a plain SDK `Upload` of the same file (goal: ≥ 0.9× their
// throughput, peak RSS flat), and the overhead of encryption (and zstd + encryption) on local
// storage.
//
// What is timed is bkp's *copy* path, which is pure storage I/O. A `files` target's artifact is a
// tar.gz, and gzip of incompressible data runs at ~40 MB/s on one core: timing a backup would time
// gzip, not the upload. So:
//   1. fixture (untimed, cached in os.tmpdir()/bkp-bench-cache/storage-v1-<N>mib/): N MiB of
//      random bytes (AES-256-CTR keystream) in data/random.bin, backed up once by
//      `bkp apply --now 2026-11-21T23:05:00Z` into the local storage store/ (a ~N MiB .tar.gz);
//   2. per destination, a policy whose target `big` has storage [src, dst] (src = that cached
//      local storage). At --now 2026-11-21T23:30:00Z the target is not due, so `bkp plan --json`
//      must show exactly one action, a `copy` of the existing artifact src → dst (checked and
//      reported, or the row is not measured);
//   3. `node bin/bkp apply -c POLICY --auto-approve --now …` timed (spawn to exit, under GNU time
//      for peak RSS and CPU), median of N runs; the copied object is deleted between runs
//      (untimed), `sync` before each run. Baselines run interleaved with bkp (bkp, b1, b2, bkp, …)
//      on the same artifact file, so a change of machine load hits all of them alike.
//
// Destinations: a private sshd on 127.0.0.1 (bench/lib/sshd.mjs, like test/helpers/sshd-server.ts)
// against `scp` (default cipher, and `-c aes128-gcm@openssh.com`, the one bkp's ssh2 picks), `sftp -b`
// put and `sftp -f -b` put (-f: fsync on the server, as bkp does);
// s3rver in a separate node process (bench/lib/s3rver-child.mjs) against
// bench/lib/s3-upload-baseline.mjs (lib-storage Upload, bkp's partSize/queueSize); local folders
// without encryption (against `dd conv=fsync`), with `encryption`, with `compression: zstd` +
// `encryption` (both against bkp's own plain local copy: that ratio is the overhead).
//
// Before anything heavy it waits (polling every 20 s, at most 15 min) until no other bench runs
// (another `bench/run.mjs`, pg_dump, borg, borgmatic, pgbackrest) and says so in the output; each
// timed run checks again and the report names any overlap.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from './fixture.mjs';
import { GNU_TIME } from './measure.mjs';
import { printProfile, summarize } from './profile.mjs';
import { startSshd } from './sshd.mjs';
import { fmtKb, fmtMs, median } from './stats.mjs';

const GENERATOR_VERSION = 1;
export const GOAL_RATIO = 0.9;
const FLAT_TOLERANCE = 1.1; // peak RSS at the big size within 10% (or 16 MiB) of the small size's counts as flat
const FLAT_SLACK_KB = 16 * 1024;
const BACKUP_NOW = '2026-11-21T23:05:00Z';
const COPY_NOW = '2026-11-21T23:30:00Z';
const TARGET = 'big';
const WRAPPER = fileURLToPath(new URL('./rss-wrapper.mjs', import.meta.url));
const S3_CHILD = fileURLToPath(new URL('./s3rver-child.mjs', import.meta.url));
const S3_BASELINE = fileURLToPath(new URL('./s3-upload-baseline.mjs', import.meta.url));
const ENC_KEY = 'bench-storage-passphrase-not-a-secret';
const OTHER_PROCESSES = ['pg_dump', 'pg_dumpall', 'borg', 'borgmatic', 'pgbackrest'];

const MB = 1e6;
const mibLabel = (bytes) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`);
const mbps = (bytes, ms) => bytes / MB / (ms / 1000);
const lastLines = (s, n = 3) => String(s ?? '').trim().split('\n').slice(-n).join(' / ').slice(0, 400);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- other benchmarks on the machine -------------------------------------------------------------

function ancestors(pid) {
  const out = new Set([pid]);
  let cur = pid;
  for (let i = 0; i < 64 && cur > 1; i++) {
    try {
      const stat = readFileSync(`/proc/${cur}/stat`, 'utf8');
      cur = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.add(cur);
    } catch {
      break;
    }
  }
  return out;
}

function pgrep(args) {
  const r = spawnSync('pgrep', args, { encoding: 'utf8' });
  if (r.error) return [];
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [pid, ...rest] = l.split(' ');
      return { pid: Number(pid), cmd: rest.join(' ') };
    });
}

/** Other benchmark processes running now: [{ pid, cmd }]. */
export function otherBenchmarks() {
  const mine = ancestors(process.pid);
  const found = pgrep(['-af', 'bench/run.mjs']).filter((p) => !mine.has(p.pid));
  for (const name of OTHER_PROCESSES) found.push(...pgrep(['-ax', name]));
  return found;
}

async function waitForQuiet(log, { pollMs = 20_000, maxMs = 15 * 60_000 } = {}) {
  const t0 = Date.now();
  let others = otherBenchmarks();
  const seenAtStart = others.map((p) => p.cmd.slice(0, 120));
  while (others.length > 0 && Date.now() - t0 < maxMs) {
    log(`storage: waiting for other benchmarks to finish (${others.length} process(es): ${[...new Set(others.map((p) => p.cmd.split(' ')[0].split('/').pop()))].join(', ')}); polling every ${pollMs / 1000} s…`);
    await sleep(pollMs);
    others = otherBenchmarks();
  }
  return { waited_ms: Date.now() - t0, busy_at_start: seenAtStart, gave_up: others.length > 0, still_running: others.map((p) => p.cmd.slice(0, 120)) };
}

// ---- measuring one process -----------------------------------------------------------------------

function readProc(pid, file) {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

function descendants(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProc(name, 'stat');
    if (!stat) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    for (const c of children.get(todo.pop()) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/**
 * Runs `cmd args` (stdout to /dev/null) under GNU time -f '%M %U %S'. Resolves { ms, status,
 * stderr, maxRssKb (largest process of the tree), userS, sysS, byCommand: {comm: VmHWM KiB,
 * sampled every second from /proc} }.
 */
function measure(cmd, args, { cwd, env = process.env, sampleMs = 1000 } = {}) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-st-'));
  const timeFile = path.join(tmp, 'time');
  const [file, argv] = GNU_TIME ? [GNU_TIME, ['-f', '%M %U %S', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const devnull = openSync('/dev/null', 'w');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, argv, { cwd, env, stdio: ['ignore', devnull, 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-32 * 1024)));
    const peak = new Map();
    const sample = () => {
      for (const pid of descendants(child.pid)) {
        const status = readProc(pid, 'status');
        if (!status) continue;
        const comm = (readProc(pid, 'comm') ?? '?').trim();
        const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
        if (m) peak.set(comm, Math.max(peak.get(comm) ?? 0, Number(m[1])));
      }
    };
    const timer = setInterval(sample, sampleMs);
    child.on('error', (err) => {
      clearInterval(timer);
      closeSync(devnull);
      rmSync(tmp, { recursive: true, force: true });
      reject(err);
    });
    child.on('close', (status) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearInterval(timer);
      closeSync(devnull);
      let maxRssKb;
      let userS;
      let sysS;
      try {
        // GNU time writes "Command exited with non-zero status N" before the figures on failure.
        const [m, u, s] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
        [maxRssKb, userS, sysS] = [m, u, s];
      } catch {
        // no GNU time
      }
      rmSync(tmp, { recursive: true, force: true });
      resolve({ ms, status, stderr, maxRssKb, userS, sysS, byCommand: Object.fromEntries(peak) });
    });
  });
}

// ---- the fixture: random data, backed up once into a cached local storage ------------------------

function writeRandomFile(file, bytes) {
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zero = Buffer.alloc(16 * 2 ** 20);
  const fd = openSync(file, 'w');
  try {
    for (let left = bytes; left > 0; ) {
      const n = Math.min(left, zero.length);
      writeSync(fd, cipher.update(n === zero.length ? zero : zero.subarray(0, n)));
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

function findArtifact(storeDir) {
  const dir = path.join(storeDir, TARGET, 'files');
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const artifact = names.find((n) => n.endsWith('.tar.gz'));
  const manifest = names.find((n) => n.endsWith('.manifest.json'));
  if (!artifact || !manifest) return undefined;
  return { file: path.join(dir, artifact), key: `${TARGET}/files/${artifact}`, bytes: statSync(path.join(dir, artifact)).size, manifest: JSON.parse(readFileSync(path.join(dir, manifest), 'utf8')) };
}

function yamlPolicy(src, dataDir, dst) {
  const lines = ['# generated by bench/lib/storage-bench.mjs', 'version: 1', 'storage:', '  src:', '    type: local', `    path: ${JSON.stringify(src)}`];
  if (dst) for (const l of dst) lines.push(`  ${l}`);
  lines.push(
    'schedules:',
    '  nightly: { cron: "0 23 * * *", timezone: UTC, retention: { keep_daily: 7 } }',
    'targets:',
    `  ${TARGET}:`,
    '    engine: files',
    `    paths: [${JSON.stringify(dataDir)}]`,
    `    storage: ${dst ? '[src, dst]' : 'src'}`,
    '    schedule: nightly',
  );
  return `${lines.join('\n')}\n`;
}

async function ensureFixture(root, mib, { log, clean }) {
  const dir = path.join(cacheRoot(), `storage-v${GENERATOR_VERSION}-${mib}mib`);
  const marker = path.join(dir, '.complete');
  if (clean) rmSync(dir, { recursive: true, force: true });
  if (existsSync(marker)) {
    const info = JSON.parse(readFileSync(marker, 'utf8'));
    const artifact = findArtifact(info.store);
    if (artifact && artifact.bytes === info.artifact_bytes) return { ...info, artifact, reused: true };
    log(`storage: the cached fixture in ${dir} is damaged; generating it again`);
  }
  rmSync(dir, { recursive: true, force: true });
  const dataDir = path.join(dir, 'data');
  const store = path.join(dir, 'store');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(store, { recursive: true });
  log(`storage: generating ${mib} MiB of random data in ${dataDir}…`);
  let t0 = Date.now();
  writeRandomFile(path.join(dataDir, 'random.bin'), mib * 2 ** 20);
  const genMs = Date.now() - t0;
  const policy = path.join(dir, 'backup.yaml');
  writeFileSync(policy, yamlPolicy(store, dataDir));
  log(`storage: backing it up once into ${store} (files engine: tar.gz, untimed for the bench)…`);
  t0 = Date.now();
  const r = spawnSync(process.execPath, ['bin/bkp', 'apply', '-c', policy, '--auto-approve', '--now', BACKUP_NOW], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  const backupMs = Date.now() - t0;
  if (r.status !== 0) throw new Error(`the fixture backup failed (exit ${r.status}): ${lastLines(r.stderr || r.stdout, 6)}`);
  const artifact = findArtifact(store);
  if (!artifact) throw new Error(`the fixture backup left no artifact in ${store}`);
  const info = { dir, dataDir, store, data_bytes: mib * 2 ** 20, artifact_bytes: artifact.bytes, random_generation_ms: genMs, backup_ms: backupMs, generated_at: new Date().toISOString() };
  writeFileSync(marker, `${JSON.stringify(info, null, 2)}\n`);
  return { ...info, artifact, reused: false };
}

// ---- the S3 server in its own process ----------------------------------------------------------

async function startS3rverProcess(dir) {
  const child = spawn(process.execPath, [S3_CHILD, dir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (err = (err + d).slice(-8000)));
  const info = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 20 s: ${err}`)), 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}) before listening: ${err}`));
    });
  });
  const killSync = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killSync);
  return {
    endpoint: `http://127.0.0.1:${info.port}`,
    pid: info.pid,
    bucket: 'bkp',
    dir,
    async stop() {
      process.removeListener('exit', killSync);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---- the bench -----------------------------------------------------------------------------------

/**
 * opts: { root, tempDir, log, runs (3), bigMiB (2048), smallMiB (200), profile ('auto'|'always'|'never'),
 *         clean (regenerate the cached fixtures), waitMaxMs }
 * Returns { lines, result }.
 */
export async function runStorageBench(opts) {
  const { root, tempDir, log } = opts;
  const runs = opts.runs ?? 3;
  const sizes = [
    { key: 'small', mib: opts.smallMiB ?? 200 },
    { key: 'big', mib: opts.bigMiB ?? 2048 },
  ];

  const waitMaxMs = opts.waitMaxMs ?? 15 * 60_000;
  let wait = await waitForQuiet(log, { maxMs: waitMaxMs });
  if (wait.waited_ms > 1000) log(`storage: waited ${fmtMs(wait.waited_ms)}${wait.gave_up ? ' and gave up: measuring while other benchmarks run' : ''}`);

  const fixtures = {};
  let generated = false;
  for (const s of sizes) {
    fixtures[s.key] = await ensureFixture(root, s.mib, { log, clean: opts.clean });
    const f = fixtures[s.key];
    generated ||= !f.reused;
    log(`storage: ${s.mib} MiB fixture ${f.reused ? 'reused' : 'generated'}: artifact ${f.artifact.file} (${mibLabel(f.artifact.bytes)})`);
  }
  if (generated) {
    // Generating took a while: another bench may have started meanwhile. Wait again (the time
    // left of the same limit) before measuring.
    const again = await waitForQuiet(log, { maxMs: Math.max(0, waitMaxMs - wait.waited_ms) });
    wait = { waited_ms: wait.waited_ms + again.waited_ms, busy_at_start: [...wait.busy_at_start, ...again.busy_at_start], gave_up: again.gave_up, still_running: again.still_running };
  }
  const loadAtStart = os.loadavg()[0];

  const work = mkdtempSync(path.join(tempDir, 'storage-'));
  const conflicts = [];
  const noteOthers = (label) => {
    const o = otherBenchmarks();
    if (o.length) conflicts.push({ label, at: new Date().toISOString(), processes: o.map((p) => p.cmd.slice(0, 100)) });
  };
  const syncDisks = () => spawnSync('sync');

  log('storage: starting sshd and s3rver…');
  const sshd = await startSshd();
  const s3 = await startS3rverProcess(path.join(work, 's3rver'));
  mkdirSync(s3.dir, { recursive: true });
  const s3env = { ...process.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const bkpEnv = { ...s3env, BKP_BENCH_KEY: ENC_KEY, NO_COLOR: '1' };
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // the SDK's notice about Node < 22
  const { S3Client, ListObjectsV2Command, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const s3client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const s3list = async (prefix) => {
    const out = [];
    let token;
    do {
      const page = await s3client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of page.Contents ?? []) out.push({ key: o.Key, size: o.Size });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  };
  const s3delete = async (prefix) => {
    for (const o of await s3list(prefix)) await s3client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: o.key }));
  };

  const sshOpts = ['-i', sshd.privateKeyFile, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
  const scpVersion = (() => {
    const r = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
    return (r.stderr || r.stdout || '').trim();
  })();

  const rows = [];
  const find = (name, size) => rows.find((r) => r.name === name && r.size === size && !r.failed);
  const planChecks = {};
  const profiles = [];
  const ciphers = {};

  try {
    for (const s of sizes) {
      const fx = fixtures[s.key];
      const art = fx.artifact;
      const bytes = art.bytes;
      // Warm the page cache with the artifact, so every run reads it from memory.
      execFileSync('cat', [art.file], { stdio: ['ignore', 'ignore', 'ignore'] });

      const dsts = {
        sftp: [
          'dst:',
          '  type: sftp',
          '  host: 127.0.0.1',
          `  port: ${sshd.port}`,
          `  user: ${sshd.user}`,
          `  path: ${JSON.stringify(path.join(sshd.root, `bkp-${s.key}`))}`,
          `  private_key_file: ${JSON.stringify(sshd.privateKeyFile)}`,
          `  host_key: ${JSON.stringify(sshd.hostKeyFingerprint)}`,
        ],
        s3: ['dst:', '  type: s3', `  bucket: ${s3.bucket}`, `  prefix: bkp-${s.key}/`, `  endpoint: ${s3.endpoint}`],
        local: ['dst:', '  type: local', `  path: ${JSON.stringify(path.join(work, `local-plain-${s.key}`))}`],
        local_enc: ['dst:', '  type: local', `  path: ${JSON.stringify(path.join(work, `local-enc-${s.key}`))}`, '  encryption: { key: "${env:BKP_BENCH_KEY}" }'],
        local_zstd_enc: ['dst:', '  type: local', `  path: ${JSON.stringify(path.join(work, `local-zstd-enc-${s.key}`))}`, '  compression: zstd', '  encryption: { key: "${env:BKP_BENCH_KEY}" }'],
      };
      // Removes what a copy left in the destination (the artifact and its manifest), untimed.
      const cleaners = {
        sftp: async () => rmSync(path.join(sshd.root, `bkp-${s.key}`, TARGET), { recursive: true, force: true }),
        s3: async () => s3delete(`bkp-${s.key}/${TARGET}/`),
        local: async () => rmSync(path.join(work, `local-plain-${s.key}`, TARGET), { recursive: true, force: true }),
        local_enc: async () => rmSync(path.join(work, `local-enc-${s.key}`, TARGET), { recursive: true, force: true }),
        local_zstd_enc: async () => rmSync(path.join(work, `local-zstd-enc-${s.key}`, TARGET), { recursive: true, force: true }),
      };
      // What a copy stored (bytes of the artifact in the destination), to check each run did copy.
      const stored = {
        sftp: async () => storedBytes(path.join(sshd.root, `bkp-${s.key}`, TARGET, 'files')),
        s3: async () => (await s3list(`bkp-${s.key}/${TARGET}/files/`)).filter((o) => !o.key.endsWith('.manifest.json')).reduce((a, o) => a + o.size, 0),
        local: async () => storedBytes(path.join(work, `local-plain-${s.key}`, TARGET, 'files')),
        local_enc: async () => storedBytes(path.join(work, `local-enc-${s.key}`, TARGET, 'files')),
        local_zstd_enc: async () => storedBytes(path.join(work, `local-zstd-enc-${s.key}`, TARGET, 'files')),
      };
      const policies = {};
      for (const [name, dst] of Object.entries(dsts)) {
        const file = path.join(work, `${name}-${s.key}.yaml`);
        writeFileSync(file, yamlPolicy(fx.store, fx.dataDir, dst));
        policies[name] = file;
        await cleaners[name]();
        // The plan must be exactly one copy src → dst.
        const r = spawnSync(process.execPath, ['bin/bkp', 'plan', '-c', file, '--now', COPY_NOW, '--json'], { cwd: root, env: bkpEnv, encoding: 'utf8', maxBuffer: 1 << 26 });
        let check;
        try {
          const plan = JSON.parse(r.stdout);
          const acts = plan.actions.map((a) => ({ id: a.id, kind: a.kind, op: a.op }));
          check = { exit_code: r.status, actions: acts, summary: plan.summary, ok: acts.length === 1 && acts[0].kind === 'copy' };
        } catch (err) {
          check = { exit_code: r.status, ok: false, error: `${err.message}: ${lastLines(r.stderr || r.stdout)}` };
        }
        planChecks[`${name}/${s.key}`] = check;
        log(`storage: plan for ${name} (${s.key}): ${check.ok ? `one action, ${check.actions[0].id}` : `NOT one copy: ${JSON.stringify(check).slice(0, 300)}`}`);
      }

      const bkpArgs = (name) => ['bin/bkp', 'apply', '-c', policies[name], '--auto-approve', '--now', COPY_NOW];
      const bkpTool = (name) => ({
        tool: 'bkp',
        command: `node bin/bkp apply -c POLICY(${name}) --auto-approve --now ${COPY_NOW}`,
        prepare: cleaners[name],
        // Under bench/lib/rss-wrapper.mjs (it imports dist/cli/main.js, as bin/bkp does), which
        // reports the node process's own peak RSS: GNU time's figure is the largest process of
        // the tree, which with zstd could be zstd.
        run: async () => {
          const rssFile = path.join(work, 'self-rss');
          rmSync(rssFile, { force: true });
          const m = await measure(process.execPath, [WRAPPER, ...bkpArgs(name).slice(1)], { cwd: root, env: { ...bkpEnv, BKP_BENCH_RSS_FILE: rssFile, BKP_BENCH_CLI: path.join(root, 'dist/cli/main.js') } });
          try {
            m.selfRssKb = Number(readFileSync(rssFile, 'utf8').trim());
          } catch {
            m.selfRssKb = undefined;
          }
          return m;
        },
        check: async () => {
          const n = await stored[name]();
          return n > 0 ? undefined : 'nothing was stored in the destination';
        },
        storedBytes: stored[name],
      });
      const remoteFile = (n) => path.join(sshd.root, `baseline-${n}.bin`);
      const fileCheck = (f) => async () => (existsSync(f) && statSync(f).size === bytes ? undefined : `${f} is missing or short`);
      const batch = (flag, f) => {
        const b = path.join(work, `sftp-batch-${path.basename(f)}`);
        writeFileSync(b, `put ${art.file} ${f}\n`);
        return ['-b', b, ...(flag ? [flag] : []), '-P', String(sshd.port), ...sshOpts, `${sshd.user}@127.0.0.1`];
      };
      const scpTool = {
        tool: 'scp',
        command: `scp -P PORT -i KEY -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ARTIFACT ${sshd.user}@127.0.0.1:ROOT/x`,
        prepare: async () => rmSync(remoteFile('scp'), { force: true }),
        run: () => measure('scp', ['-P', String(sshd.port), ...sshOpts, art.file, `${sshd.user}@127.0.0.1:${remoteFile('scp')}`]),
        check: fileCheck(remoteFile('scp')),
      };
      const scpGcmTool = {
        tool: 'scp -c aes128-gcm',
        command: 'scp -c aes128-gcm@openssh.com -P PORT -i KEY … ARTIFACT user@127.0.0.1:ROOT/x   (the cipher bkp\'s ssh2 negotiates)',
        prepare: async () => rmSync(remoteFile('scpgcm'), { force: true }),
        run: () => measure('scp', ['-c', 'aes128-gcm@openssh.com', '-P', String(sshd.port), ...sshOpts, art.file, `${sshd.user}@127.0.0.1:${remoteFile('scpgcm')}`]),
        check: fileCheck(remoteFile('scpgcm')),
      };
      const sftpTool = {
        tool: 'sftp -b',
        command: 'sftp -b BATCH(put ARTIFACT ROOT/x) -P PORT -i KEY … user@127.0.0.1',
        prepare: async () => rmSync(remoteFile('sftp'), { force: true }),
        run: () => measure('sftp', batch(undefined, remoteFile('sftp'))),
        check: fileCheck(remoteFile('sftp')),
      };
      const sftpFsyncTool = {
        tool: 'sftp -f -b',
        command: 'sftp -f -b BATCH(put ARTIFACT ROOT/x) -P PORT -i KEY … user@127.0.0.1   (-f: fsync on the server, as bkp does)',
        prepare: async () => rmSync(remoteFile('sftpf'), { force: true }),
        run: () => measure('sftp', batch('-f', remoteFile('sftpf'))),
        check: fileCheck(remoteFile('sftpf')),
      };
      const uploadTool = {
        tool: 'SDK Upload',
        command: 'node bench/lib/s3-upload-baseline.mjs ARTIFACT ENDPOINT bkp baseline/x   (lib-storage Upload, partSize 16 MiB, queueSize 2)',
        prepare: async () => s3delete('baseline/'),
        run: () => measure(process.execPath, [S3_BASELINE, art.file, s3.endpoint, s3.bucket, 'baseline/x'], { cwd: root, env: s3env }),
        check: async () => {
          const o = await s3list('baseline/');
          return o.length === 1 && o[0].size === bytes ? undefined : `baseline/x is missing or has the wrong size (${JSON.stringify(o)})`;
        },
      };
      const dstFile = path.join(work, `dd-${s.key}.bin`);
      const ddTool = {
        tool: 'dd conv=fsync',
        command: 'dd if=ARTIFACT of=DEST bs=1M conv=fsync',
        prepare: async () => rmSync(dstFile, { force: true }),
        run: () => measure('dd', [`if=${art.file}`, `of=${dstFile}`, 'bs=1M', 'conv=fsync', 'status=none']),
        check: fileCheck(dstFile),
      };

      const groups = [
        { path: 'local → sftp', name: 'sftp', tools: [bkpTool('sftp'), scpTool, scpGcmTool, sftpTool, sftpFsyncTool], goal: true },
        { path: 'local → s3', name: 's3', tools: [bkpTool('s3'), uploadTool], goal: true },
        { path: 'local → local', name: 'local', tools: [bkpTool('local'), ddTool], goal: false },
        { path: 'local → local + encryption', name: 'local_enc', tools: [bkpTool('local_enc')], goal: false, vs: 'local' },
        { path: 'local → local + zstd + encryption', name: 'local_zstd_enc', tools: [bkpTool('local_zstd_enc')], goal: false, vs: 'local' },
      ];
      for (const g of groups) {
        if (!planChecks[`${g.name}/${s.key}`].ok) {
          rows.push({ size: s.key, artifact_bytes: bytes, path: g.path, name: g.name, failed: `not measured: the plan is not exactly one copy (${JSON.stringify(planChecks[`${g.name}/${s.key}`]).slice(0, 300)})` });
          continue;
        }
        log(`storage: ${g.path}, ${mibLabel(bytes)}: ${runs} runs of ${g.tools.map((t) => t.tool).join(', ')} (interleaved)…`);
        const res = Object.fromEntries(g.tools.map((t) => [t.tool, { samples: [], failures: [] }]));
        for (let i = 0; i < runs; i++) {
          for (const t of g.tools) {
            await t.prepare();
            syncDisks();
            noteOthers(`${g.name}/${s.key}/${t.tool}/${i + 1}`);
            const seen = sshd.ciphers().length;
            const m = await t.run();
            if (g.name === 'sftp') res[t.tool].ciphers = [...new Set([...(res[t.tool].ciphers ?? []), ...sshd.ciphers().slice(seen)])];
            const bad = m.status !== 0 ? `exit ${m.status}: ${lastLines(m.stderr)}` : await t.check();
            if (bad) {
              res[t.tool].failures.push(bad);
              log(`  ${t.tool} run ${i + 1}: ${bad}`);
            } else {
              if (t.storedBytes) m.storedBytes = await t.storedBytes();
              res[t.tool].samples.push(m);
            }
            log(`  ${t.tool} run ${i + 1}: ${fmtMs(m.ms)} (${mbps(bytes, m.ms).toFixed(0)} MB/s), peak RSS ${fmtKb(m.selfRssKb ?? m.maxRssKb)}, CPU ${((m.userS ?? 0) + (m.sysS ?? 0)).toFixed(2)} s`);
          }
        }
        for (const t of g.tools) await t.prepare(); // leave nothing behind
        const summarizeTool = (t) => {
          const r = res[t.tool];
          if (r.samples.length === 0) return { tool: t.tool, command: t.command, failed: r.failures[0] ?? 'no run' };
          const ms = r.samples.map((x) => x.ms);
          const med = median(ms);
          const rss = r.samples.map((x) => x.maxRssKb).filter(Number.isFinite);
          const self = r.samples.map((x) => x.selfRssKb).filter(Number.isFinite);
          const by = {};
          for (const x of r.samples) for (const [k, v] of Object.entries(x.byCommand)) by[k] = Math.max(by[k] ?? 0, v);
          const cpu = r.samples.map((x) => (x.userS ?? NaN) + (x.sysS ?? NaN));
          return {
            tool: t.tool,
            command: t.command,
            samples_ms: ms.map((x) => +x.toFixed(1)),
            median_ms: +med.toFixed(1),
            mb_per_s: +mbps(bytes, med).toFixed(1),
            peak_rss_kb: rss.length ? Math.max(...rss) : undefined,
            self_peak_rss_kb: self.length ? Math.max(...self) : undefined,
            peak_rss_by_command_kb: by,
            cpu_s_median: +median(cpu).toFixed(2),
            user_s_median: +median(r.samples.map((x) => x.userS)).toFixed(2),
            sys_s_median: +median(r.samples.map((x) => x.sysS)).toFixed(2),
            stored_bytes: r.samples[0].storedBytes,
            ciphers: r.ciphers,
            failures: r.failures.length ? r.failures : undefined,
          };
        };
        const [bkp, ...baselines] = g.tools.map(summarizeTool);
        rows.push({ size: s.key, artifact_bytes: bytes, path: g.path, name: g.name, goal: g.goal, vs: g.vs, bkp, baselines });
      }
      // Which cipher each sftp client negotiated.
      const sftpRow = rows.find((r) => r.name === 'sftp' && r.size === s.key && !r.failed);
      if (sftpRow) for (const t of [sftpRow.bkp, ...sftpRow.baselines]) if (t.ciphers) ciphers[t.tool] = t.ciphers.join(', ');
    }

    // ---- goals -------------------------------------------------------------------------------
    for (const r of rows) {
      if (r.failed || r.bkp.failed) continue;
      for (const b of r.baselines) if (!b.failed) b.ratio = b.median_ms / r.bkp.median_ms; // bkp throughput / baseline throughput
      if (r.vs) {
        const ref = find(r.vs, r.size);
        if (ref && !ref.bkp.failed) r.vs_plain = { ratio: ref.bkp.median_ms / r.bkp.median_ms, plain_median_ms: ref.bkp.median_ms, plain_mb_per_s: ref.bkp.mb_per_s };
      }
      const small = find(r.name, 'small');
      if (r.size === 'big' && small && !small.bkp.failed) {
        // The node process: GNU time's figure is the largest process of the tree (zstd may be larger).
        const self = (x) => x.bkp.self_peak_rss_kb ?? x.bkp.peak_rss_kb;
        const [a, b] = [self(small), self(r)];
        r.rss_flat = { small_kb: a, big_kb: b, flat: b <= Math.max(a * FLAT_TOLERANCE, a + FLAT_SLACK_KB) };
      }
      if (r.goal && r.size === 'big') {
        r.met = r.baselines.every((b) => b.failed || b.ratio >= GOAL_RATIO) && r.rss_flat?.flat !== false;
      }
    }

    // ---- profiles of a path that missed the goal -----------------------------------------------
    const profileMode = opts.profile ?? 'auto';
    for (const r of rows.filter((x) => x.size === 'big' && !x.failed && x.goal)) {
      if (profileMode === 'never' || (profileMode === 'auto' && r.met !== false)) continue;
      log(`storage: profiling bkp apply for ${r.path} (node --cpu-prof)…`);
      const policy = path.join(work, `${r.name}-big.yaml`);
      const cleaner = r.name === 'sftp' ? () => rmSync(path.join(sshd.root, 'bkp-big', TARGET), { recursive: true, force: true }) : () => s3delete(`bkp-big/${TARGET}/`);
      await cleaner();
      syncDisks();
      const profDir = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-prof-'));
      try {
        const t0 = process.hrtime.bigint();
        const pr = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=500', 'bin/bkp', 'apply', '-c', policy, '--auto-approve', '--now', COPY_NOW], { cwd: root, env: bkpEnv, encoding: 'utf8', maxBuffer: 1 << 26 });
        const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
        const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
        if (!f) throw new Error(`no .cpuprofile (exit ${pr.status}): ${lastLines(pr.stderr)}`);
        profiles.push({ measurement: `bkp apply, ${r.path}, ${mibLabel(r.artifact_bytes)}`, path: r.path, ...summarize(JSON.parse(readFileSync(path.join(profDir, f), 'utf8')), root, wallMs) });
      } catch (err) {
        profiles.push({ measurement: `bkp apply, ${r.path}`, path: r.path, error: err.message });
      } finally {
        rmSync(profDir, { recursive: true, force: true });
        await cleaner();
      }
    }
  } finally {
    s3client.destroy();
    await s3.stop().catch(() => undefined);
    await sshd.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }

  // ---- the report ------------------------------------------------------------------------------
  const lines = [];
  const p = (l = '') => lines.push(l);
  const quiet = wait.busy_at_start.length === 0 && conflicts.length === 0;
  if (wait.busy_at_start.length === 0) p('No other benchmark was running when this section started.');
  else if (!wait.gave_up) p(`Other benchmarks were running when this section started (${[...new Set(wait.busy_at_start.map((c) => c.split(' ')[0].split('/').pop()))].join(', ')}); it waited ${fmtMs(wait.waited_ms)} in all for them to finish before measuring.`);
  else p(`**Measured while other benchmarks ran**: waited ${fmtMs(wait.waited_ms)} (the limit) and they were still running (${wait.still_running.join('; ').slice(0, 300)}).`);
  if (conflicts.length > 0) p(`**${conflicts.length} timed run(s) started while another benchmark was running** (first: ${conflicts[0].label}: ${conflicts[0].processes.join('; ').slice(0, 200)}); those figures are noisier.`);
  else if (!wait.gave_up) p('No other benchmark started during the timed runs.');
  p(`Load average (1 min) when measuring started: ${loadAtStart.toFixed(2)}.`);
  p(
    `Artifacts: ${sizes.map((s) => `${mibLabel(fixtures[s.key].artifact.bytes)} (tar.gz of ${s.mib} MiB of random bytes${fixtures[s.key].reused ? ', cached' : `, backed up in ${fmtMs(fixtures[s.key].backup_ms)}`})`).join(' and ')}. ` +
      `Each bkp row is \`bkp apply\` of a policy whose plan is exactly one \`copy\` of that artifact from a local storage to the destination (checked with \`bkp plan --json\` before measuring: ${Object.values(planChecks).every((c) => c.ok) ? 'one copy action in every case' : '**not always**, see below'}).`,
  );
  p(`Wall: median of ${runs} runs, spawn to exit, tools interleaved, page cache warm, \`sync\` before each run, the copy deleted between runs. Throughput in MB/s (10^6 bytes per second).`);
  p(`SFTP: ${sshd.version || 'OpenSSH sshd'} on 127.0.0.1 (a private server); client ${scpVersion}; ciphers negotiated: ${Object.entries(ciphers).map(([t, c]) => `${t} ${c}`).join(', ') || 'not logged'} (bkp's ssh2 prefers aes128-gcm when the CPU has AES-NI; OpenSSH's scp/sftp prefer chacha20-poly1305). S3: s3rver 3.7 in its own node process on 127.0.0.1.`);
  p();
  p('| path | size | bkp wall | baseline wall | bkp/baseline throughput | peak RSS (bkp) | goal met? |');
  p('|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const size = mibLabel(r.artifact_bytes);
    if (r.failed) {
      p(`| ${r.path} | ${size} | ${r.failed} | — | — | — | — |`);
      continue;
    }
    const b = r.bkp;
    const bkpCell = b.failed ? `failed: ${b.failed}` : `${fmtMs(b.median_ms)} (${b.mb_per_s.toFixed(0)} MB/s)`;
    const rssCell = b.failed ? '—' : `${fmtKb(b.self_peak_rss_kb ?? b.peak_rss_kb)}${b.peak_rss_by_command_kb.zstd ? ` (zstd ${fmtKb(b.peak_rss_by_command_kb.zstd)})` : ''}`;
    const flatNote = r.rss_flat ? `; RSS flat vs ${mibLabel(find(r.name, 'small').artifact_bytes)} (${fmtKb(r.rss_flat.small_kb)}): ${r.rss_flat.flat ? 'yes' : '**no**'}` : '';
    const rowsOut = r.baselines.length ? r.baselines : [undefined];
    for (const bl of rowsOut) {
      let baseCell = '—';
      let ratioCell = '—';
      let goal = '—';
      if (bl) {
        baseCell = bl.failed ? `${bl.tool}: failed (${bl.failed.slice(0, 100)})` : `${bl.tool}: ${fmtMs(bl.median_ms)} (${bl.mb_per_s.toFixed(0)} MB/s)`;
        ratioCell = bl.ratio !== undefined ? `${bl.ratio.toFixed(2)}×` : '—';
      } else if (r.vs_plain) {
        baseCell = `bkp local → local: ${fmtMs(r.vs_plain.plain_median_ms)} (${r.vs_plain.plain_mb_per_s.toFixed(0)} MB/s)`;
        ratioCell = `${r.vs_plain.ratio.toFixed(2)}×`;
      }
      if (r.goal && r.size === 'big' && bl && bl.ratio !== undefined) goal = `≥ ${GOAL_RATIO}×: ${bl.ratio >= GOAL_RATIO ? 'yes' : '**no**'}${flatNote}`;
      else if (r.goal && r.size !== 'big') goal = '(RSS reference)';
      else if (r.vs_plain) {
        const pct = (1 / r.vs_plain.ratio - 1) * 100;
        goal = `— (${r.name === 'local_zstd_enc' ? 'zstd + encryption' : 'encryption'} overhead: ${Math.abs(pct).toFixed(0)} % ${pct >= 0 ? 'more' : 'less'} time)${flatNote}`;
      }
      else if (r.name === 'local' && r.size === 'big') goal = `— (reference)${flatNote}`;
      else if (r.size === 'big' && r.rss_flat) goal = `—${flatNote}`;
      p(`| ${r.path} | ${size} | ${bkpCell} | ${baseCell} | ${ratioCell} | ${rssCell} | ${goal} |`);
    }
  }
  p();
  p(`CPU time (user + sys of the whole process tree, median) at ${mibLabel(fixtures.big.artifact.bytes)}, bkp vs baselines:`);
  for (const r of rows.filter((x) => x.size === 'big' && !x.failed && !x.bkp.failed)) {
    p(`- ${r.path}: bkp ${r.bkp.cpu_s_median} s (user ${r.bkp.user_s_median}, sys ${r.bkp.sys_s_median})${r.baselines.map((b) => (b.failed ? '' : `; ${b.tool} ${b.cpu_s_median} s`)).join('')}`);
  }
  p();
  p(
    `Peak RSS (bkp): the node process's own high-water mark (process.resourceUsage().maxRSS, through bench/lib/rss-wrapper.mjs, which runs the CLI as bin/bkp does; GNU time's %M of the tree is in latest.json); ` +
      `"flat" means the ${mibLabel(fixtures.big.artifact.bytes)} figure is within ${Math.round((FLAT_TOLERANCE - 1) * 100)} % (or ${FLAT_SLACK_KB / 1024} MiB) of the ${mibLabel(fixtures.small.artifact.bytes)} one. ` +
      `The ${mibLabel(fixtures.small.artifact.bytes)} rows are dominated by bkp's fixed cost (start-up, policy, observing both storages, locks, run records), so the goal is judged at ${mibLabel(fixtures.big.artifact.bytes)}.`,
  );
  if (!Object.values(planChecks).every((c) => c.ok)) {
    p();
    for (const [k, c] of Object.entries(planChecks)) if (!c.ok) p(`- plan ${k}: ${JSON.stringify(c).slice(0, 400)}`);
  }
  for (const pr of profiles) {
    if (pr.error) p(`\nProfile of ${pr.measurement} failed: ${pr.error}`);
    else printProfile(pr.measurement, pr, (l = '') => p(l));
  }

  return {
    lines,
    result: {
      quiet,
      wait,
      conflicts,
      loadavg_1m_at_measure_start: +loadAtStart.toFixed(2),
      runs,
      now: { backup: BACKUP_NOW, copy: COPY_NOW },
      fixtures: Object.fromEntries(Object.entries(fixtures).map(([k, f]) => [k, { dir: f.dir, data_bytes: f.data_bytes, artifact_bytes: f.artifact_bytes, artifact: f.artifact.file, reused: f.reused, random_generation_ms: f.random_generation_ms, backup_ms: f.backup_ms }])),
      plan_checks: planChecks,
      sshd: { version: sshd.version, client: scpVersion, ciphers },
      goals: { ratio: GOAL_RATIO, flat_tolerance: FLAT_TOLERANCE, flat_slack_kb: FLAT_SLACK_KB },
      rows,
      profiles,
    },
  };
}

function storedBytes(dir) {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((n) => !n.endsWith('.manifest.json') && !n.includes('.partial-'))
    .reduce((a, n) => a + statSync(path.join(dir, n)).size, 0);
}
