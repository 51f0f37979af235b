// etcd benchmark (`node bench/run.mjs --only etcd`, or on its own: `node bench/lib/etcd-bench.mjs`):
// a v3 snapshot of a private etcd holding 100k keys, `bkp backup cfg` (on-demand, local storage)
// against raw `etcdctl snapshot save FILE`. Goal: bkp wall ≤ 1.1× raw.
//
// The keys are loaded through etcd's v3 JSON gateway (POST /v3/kv/txn, 100 base64 puts per txn) with
// many concurrent keep-alive requests, not one etcdctl process per key. Each tool runs `warmup` times
// unmeasured, then `runs` times, alternating raw and bkp; wall is spawn-to-exit, peak RSS is GNU
// time's %M (the tool's own process: for bkp, node; etcdctl children are not included by %M).
// bkp stages the snapshot to a temp file (etcdctl 3.4 cannot write to stdout) and then streams it
// into storage, so it writes the data twice; a plain `cp` of the snapshot is timed for reference,
// as are bkp's extra etcdctl calls (version, endpoint status, snapshot status, get --keys-only --limit=1 for the key count).
//
// Options: --etcd-keys N (100000)  --etcd-runs N (5)  --etcd-warmup N (1)  --etcd-value-bytes N (150)
//          --etcd-concurrency N (16)  --no-wait (do not wait for other benchmarks)
//          --etcd-json FILE (also write the results as JSON)
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startEtcd } from './etcd.mjs';
import { splitSectionArgv } from './section-argv.mjs';

export const GOAL_RATIO = 1.1;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => existsSync(p));
const ETCD_ENV = { ...process.env, ETCDCTL_API: '3' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const fmtBytes = (b) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);
const fmtKb = (kb) => (kb == null ? '?' : `${(kb / 1024).toFixed(1)} MiB`);

// ---- waiting for a quiet machine ----------------------------------------------------------------
function ancestors(pid) {
  const mine = new Set([pid]);
  let p = pid;
  for (let i = 0; i < 50 && p > 1; i++) {
    try {
      p = Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\)\s+\S+\s+/, '').split(' ')[0]);
      mine.add(p);
    } catch {
      break;
    }
  }
  return mine;
}
function pgrep(args) {
  const r = spawnSync('pgrep', args, { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter(Boolean).map((l) => {
    const i = l.indexOf(' ');
    return { pid: Number(i < 0 ? l : l.slice(0, i)), cmd: i < 0 ? '' : l.slice(i + 1) };
  });
}
export function otherBenchmarks() {
  const mine = ancestors(process.pid);
  const found = pgrep(['-af', 'bench/run.mjs']).filter((p) => !mine.has(p.pid) && !/pgrep/.test(p.cmd));
  for (const name of ['pg_dump', 'borg', 'pgbackrest']) found.push(...pgrep(['-ax', name]));
  return found;
}
async function waitForQuiet(log, { pollMs = 15_000, maxMs = 8 * 60_000 } = {}) {
  const t0 = Date.now();
  let others = otherBenchmarks();
  const atStart = others.map((p) => `${p.pid} ${p.cmd.slice(0, 100)}`);
  while (others.length && Date.now() - t0 < maxMs) {
    log(`etcd: waiting for other benchmarks (${others.map((p) => p.pid).join(', ')}), polling every ${pollMs / 1000} s…`);
    await sleep(pollMs);
    others = otherBenchmarks();
  }
  return { waited_ms: Date.now() - t0, busy_at_start: atStart, under_load: others.length > 0, still_running: others.map((p) => `${p.pid} ${p.cmd.slice(0, 100)}`) };
}

// ---- loading keys through the JSON gateway ------------------------------------------------------
async function loadKeys(endpoint, { keys, valueBytes, concurrency, batch = 100 }) {
  // Batches of `batch` puts in one txn each (etcd's default --max-txn-ops is 128), `concurrency`
  // requests in flight on keep-alive sockets.
  const url = new URL('/v3/kv/txn', endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const filler = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(400 / 36));
  const b64 = (x) => Buffer.from(x).toString('base64');
  const putOp = (i) => {
    const key = `/bench/keys/${String(i).padStart(7, '0')}`;
    // 100–200 bytes, varying by key.
    const len = valueBytes - 50 + ((i * 7919) % 101);
    const value = `{"id":${i},"data":"${filler.slice(i % 36, i % 36 + Math.max(0, len - 21 - String(i).length))}"}`;
    return { requestPut: { key: b64(key), value: b64(value) } };
  };
  const put = (from) =>
    new Promise((resolve, reject) => {
      const ops = [];
      for (let i = from; i < Math.min(keys, from + batch); i++) ops.push(putOp(i));
      const body = JSON.stringify({ success: ops });
      const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`txn at key ${from}: HTTP ${res.statusCode} ${text.slice(0, 200)}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < keys) {
      const from = next;
      next += batch;
      await put(from);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return performance.now() - t0;
}

// ---- measuring one process ----------------------------------------------------------------------
function measure(cmd, args, { env = process.env, cwd = ROOT } = {}) {
  const rssDir = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-rss-'));
  const rssFile = path.join(rssDir, 'rss');
  const [c, a] = GNU_TIME ? [GNU_TIME, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args];
  const t0 = performance.now();
  const r = spawnSync(c, a, { env, cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  let rssKb;
  try {
    rssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  } catch {
    // no GNU time
  }
  rmSync(rssDir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  return { ms, rssKb };
}

function largestFile(dir) {
  let best = { size: 0, file: undefined };
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const f = path.join(e.parentPath ?? e.path, e.name);
    const size = statSync(f).size;
    if (size > best.size) best = { size, file: f };
  }
  return best;
}

function policy(endpoint, storageDir) {
  return `version: 1
storage:
  local:
    type: local
    path: ${JSON.stringify(storageDir)}
schedules:
  nightly:
    cron: "0 3 * * *"
    timezone: UTC
    retention:
      keep_daily: 7
      keep_on_demand: 1
targets:
  cfg:
    engine: etcd
    endpoints: [${JSON.stringify(endpoint)}]
    schedule: nightly
`;
}

export async function runEtcdBench({ keys = 100_000, runs = 5, warmup = 1, valueBytes = 150, concurrency = 16, wait = true, log = (s) => process.stderr.write(`${s}\n`), print = console.log } = {}) {
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    log('etcd: dist/ missing, running npm run build…');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
  const etcdVersion = execFileSync('etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const work = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-etcdwork-'));
  let etcd;
  try {
    const quiet = wait ? await waitForQuiet(log) : { waited_ms: 0, under_load: false, skipped: true };
    etcd = await startEtcd();
    log(`etcd: ${etcdVersion} at ${etcd.endpoint}; loading ${keys} keys through the JSON gateway (txns of 100 puts, ${concurrency} concurrent)…`);
    const loadMs = await loadKeys(etcd.endpoint, { keys, valueBytes, concurrency });
    const count = JSON.parse(execFileSync('etcdctl', ['--endpoints', etcd.endpoint, 'get', '/bench/', '--prefix', '--keys-only', '--limit=1', '-w', 'json'], { env: ETCD_ENV, encoding: 'utf8' })).count;
    if (count !== keys) throw new Error(`etcd: loaded ${count} keys, expected ${keys}`);
    log(`etcd: loaded ${count} keys in ${fmtMs(loadMs)} (${Math.round(count / (loadMs / 1000))} puts/s)`);

    const rawFile = path.join(work, 'raw.db');
    const storageDir = path.join(work, 'storage');
    const policyFile = path.join(work, 'policy.yaml');
    writeFileSync(policyFile, policy(etcd.endpoint, storageDir));
    const raw = () => {
      rmSync(rawFile, { force: true });
      return measure('etcdctl', ['--endpoints', etcd.endpoint, 'snapshot', 'save', rawFile], { env: ETCD_ENV });
    };
    const bkp = () => {
      rmSync(storageDir, { recursive: true, force: true });
      mkdirSync(storageDir);
      return measure(process.execPath, [path.join(ROOT, 'bin', 'bkp'), 'backup', 'cfg', '-c', policyFile]);
    };
    const res = { raw: [], bkp: [] };
    for (let i = 0; i < warmup; i++) {
      log(`etcd: warm-up ${i + 1}/${warmup}`);
      raw();
      bkp();
    }
    for (let i = 0; i < runs; i++) {
      const first = i % 2 ? ['bkp', bkp] : ['raw', raw];
      const second = i % 2 ? ['raw', raw] : ['bkp', bkp];
      for (const [k, f] of [first, second]) res[k].push(f());
      log(`etcd: run ${i + 1}/${runs}: raw ${fmtMs(res.raw.at(-1).ms)}, bkp ${fmtMs(res.bkp.at(-1).ms)}`);
    }
    // Snapshot sizes: raw file (last run) and the artifact bkp left in storage (last run).
    const rawSize = statSync(rawFile).size;
    const bkpArtifact = largestFile(storageDir);

    // Reference: the second copy (plain cp of a snapshot-sized file), and bkp's extra etcdctl calls.
    const cpDst = path.join(work, 'cp.db');
    const cpMs = [];
    for (let i = 0; i < runs; i++) {
      rmSync(cpDst, { force: true });
      cpMs.push(measure('cp', [rawFile, cpDst]).ms);
    }
    rmSync(cpDst, { force: true });
    const ep = ['--endpoints', etcd.endpoint];
    const extras = {
      'etcdctl version': ['version'],
      'etcdctl endpoint status': [...ep, 'endpoint', 'status', '-w', 'json'],
      'etcdctl snapshot status': ['snapshot', 'status', rawFile, '-w', 'json'],
      'etcdctl get (key count)': [...ep, 'get', '', '--prefix', '--keys-only', '--limit=1', '-w', 'json'],
    };
    const extraMs = {};
    for (const [name, args] of Object.entries(extras)) extraMs[name] = median(Array.from({ length: 3 }, () => measure('etcdctl', args, { env: ETCD_ENV }).ms));
    const nodeFloor = median(Array.from({ length: 3 }, () => measure(process.execPath, ['-e', '0']).ms));
    const startup = median(Array.from({ length: 3 }, () => measure(process.execPath, [path.join(ROOT, 'bin', 'bkp'), '--version']).ms));

    const rawMed = median(res.raw.map((r) => r.ms));
    const bkpMed = median(res.bkp.map((r) => r.ms));
    const ratio = bkpMed / rawMed;
    const rawRss = median(res.raw.map((r) => r.rssKb));
    const bkpRss = median(res.bkp.map((r) => r.rssKb));
    const cpMed = median(cpMs);
    const extraSum = Object.values(extraMs).reduce((a, b) => a + b, 0);
    const overhead = bkpMed - rawMed;

    print(`\n### etcd: v3 snapshot of ${keys.toLocaleString('en')} keys (${etcdVersion})\n`);
    print(`Loaded ${keys.toLocaleString('en')} keys (values ${valueBytes - 50}–${valueBytes + 50} B) through the v3 JSON gateway (POST /v3/kv/txn, 100 puts per txn, ${concurrency} concurrent keep-alive requests): ${fmtMs(loadMs)}.`);
    print(`Median of ${runs} runs after ${warmup} warm-up, raw and bkp alternating; peak RSS by ${GNU_TIME ? `GNU time -f %M (the tool's own process; for bkp the node process, not its etcdctl children)` : 'n/a (GNU time missing)'}.`);
    if (quiet.under_load) print(`**Measured under load**: other benchmarks still running after ${fmtMs(quiet.waited_ms)}: ${quiet.still_running.join('; ')}`);
    else if (quiet.waited_ms > 1000) print(`Waited ${fmtMs(quiet.waited_ms)} for other benchmarks to finish; measured on a quiet machine.`);
    print('');
    print('| tool | wall median | ratio | snapshot size | peak RSS | goal met (≤ 1.1×) |');
    print('|---|---:|---:|---:|---:|:---:|');
    print(`| \`etcdctl snapshot save FILE\` | ${fmtMs(rawMed)} | 1.00× | ${fmtBytes(rawSize)} | ${fmtKb(rawRss)} | (baseline) |`);
    print(`| \`bkp backup cfg\` (local storage) | ${fmtMs(bkpMed)} | ${ratio.toFixed(2)}× | ${fmtBytes(bkpArtifact.size)}${bkpArtifact.file ? ` (\`${path.basename(bkpArtifact.file)}\`)` : ''} | ${fmtKb(bkpRss)} | ${ratio <= GOAL_RATIO ? 'yes' : '**no**'} |`);
    print('');
    print(`All runs (ms): raw ${res.raw.map((r) => r.ms.toFixed(0)).join(', ')}; bkp ${res.bkp.map((r) => r.ms.toFixed(0)).join(', ')}.`);
    print(`bkp overhead ${fmtMs(overhead)} over raw. Where it goes (reference timings, medians): second copy of the snapshot (\`cp\` of ${fmtBytes(rawSize)}) ${fmtMs(cpMed)}; node start-up \`bkp --version\` ${fmtMs(startup)} (\`node -e 0\` ${fmtMs(nodeFloor)}); bkp's extra etcdctl calls ${Object.entries(extraMs).map(([k, v]) => `${k} ${fmtMs(v)}`).join(', ')} (sum ${fmtMs(extraSum)}).`);
    if (ratio > GOAL_RATIO) print(`Goal missed: the second copy accounts for ~${fmtMs(cpMed)} (${((cpMed / overhead) * 100).toFixed(0)}% of the overhead, ${((cpMed / rawMed) * 100).toFixed(0)}% of raw wall); start-up + extra etcdctl calls for ~${fmtMs(startup + extraSum)}.`);
    return {
      etcd_version: etcdVersion, keys, value_bytes: [valueBytes - 50, valueBytes + 50], load_ms: loadMs, runs, warmup, quiet,
      raw: { median_ms: rawMed, runs_ms: res.raw.map((r) => r.ms), snapshot_bytes: rawSize, peak_rss_kb: rawRss },
      bkp: { median_ms: bkpMed, runs_ms: res.bkp.map((r) => r.ms), snapshot_bytes: bkpArtifact.size, peak_rss_kb: bkpRss },
      ratio, goal_ratio: GOAL_RATIO, goal_met: ratio <= GOAL_RATIO,
      reference: { cp_ms: cpMed, bkp_version_ms: startup, node_floor_ms: nodeFloor, etcdctl_ms: extraMs },
    };
  } finally {
    if (etcd) await etcd.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Options of this section, as parseArgs options (run.mjs strips them before its own parse). */
export const ETCD_OPTIONS = {
  'etcd-keys': { type: 'string' }, 'etcd-runs': { type: 'string' }, 'etcd-warmup': { type: 'string' },
  'etcd-value-bytes': { type: 'string' }, 'etcd-concurrency': { type: 'string' }, 'etcd-json': { type: 'string' },
  'no-wait': { type: 'boolean' },
};

export async function main(args = process.argv.slice(2)) {
  const { values: o } = parseArgs({ args, options: ETCD_OPTIONS, strict: true });
  const result = await runEtcdBench({
    keys: Number(o['etcd-keys'] ?? 100_000), runs: Number(o['etcd-runs'] ?? 5), warmup: Number(o['etcd-warmup'] ?? 1),
    valueBytes: Number(o['etcd-value-bytes'] ?? 150), concurrency: Number(o['etcd-concurrency'] ?? 16), wait: !o['no-wait'],
  });
  if (o['etcd-json']) writeFileSync(o['etcd-json'], `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}

/**
 * The hook bench/run.mjs calls before its own option parsing: when `--only` names `etcd`, runs
 * this section with the --etcd-* / --no-wait options, and returns `{ ran, rest, onlyEtcd }`:
 * `rest` is argv without `etcd` in --only and without this section's options, so run.mjs can go
 * on with the other sections named (or stop when `onlyEtcd`).
 */
export async function runFromBenchArgv(argv) {
  const kind = (name) => (ETCD_OPTIONS[name] ? (ETCD_OPTIONS[name].type === 'string' ? 'value' : 'flag') : undefined);
  const { selected, mine, rest, otherOnly } = splitSectionArgv(argv, 'etcd', kind);
  if (!selected) return { ran: false, rest: argv, onlyEtcd: false };
  await main(mine);
  return { ran: true, rest, onlyEtcd: !otherOnly };
}
