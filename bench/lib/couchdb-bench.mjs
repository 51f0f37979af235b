// CouchDB export benchmark (`node bench/run.mjs --only couchdb`, or on its own:
// `node bench/lib/couchdb-bench.mjs`): `bkp backup bench` of a couchdb target (export to local
// storage: every document with its revision history, gzip NDJSON) against the raw read the issue
// names, `curl -s -o FILE URL/db/_all_docs?include_docs=true`. Goals (issue 4): bkp's throughput
// ≥ 0.8× raw on 200,000 documents, and bkp's peak RSS flat between 20,000 and 200,000.
//
// The server is the tests' CouchDB-compatible one (express-pouchdb on in-memory PouchDB,
// test/helpers/couch-server-child.mjs), in a process of its own, started afresh for each size so
// both sizes are measured on a server holding only that database. Documents are ~550 B of JSON
// (an event: type, counters, a 300-character payload, tags, a nested object), first revisions,
// loaded with _bulk_docs (5,000 per request). Each tool runs `warmup` times unmeasured, then
// `runs` times, alternating raw and bkp; wall is spawn-to-exit, peak RSS is GNU time's %M.
// Throughput is documents per second of wall; the ratio is bkp's over raw's. When the goal is
// missed, bkp is profiled once (node --cpu-prof) on the large database.
//
// Options: --couchdb-docs N (200000)  --couchdb-small-docs N (20000)  --couchdb-runs N (3)
//          --couchdb-warmup N (1)  --couchdb-json FILE (also write the results as JSON)
//          --no-wait (do not wait for other benchmarks)  --no-profile (never profile)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { GNU_TIME, runNode } from './measure.mjs';
import { printProfile, profileCli } from './profile.mjs';
import { otherBenchmarks } from './etcd-bench.mjs';
import { splitSectionArgv } from './section-argv.mjs';

export const GOAL_RATIO = 0.8;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHILD = path.join(ROOT, 'test', 'helpers', 'couch-server-child.mjs');
const DB = 'bench';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const fmtBytes = (b) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);
const fmtKb = (kb) => (kb == null ? '?' : `${(kb / 1024).toFixed(1)} MiB`);
const fmtRate = (docs, ms) => `${Math.round(docs / (ms / 1000)).toLocaleString('en')} docs/s`;

async function waitForQuiet(log, { pollMs = 15_000, maxMs = 8 * 60_000 } = {}) {
  const t0 = Date.now();
  let others = otherBenchmarks();
  while (others.length && Date.now() - t0 < maxMs) {
    log(`couchdb: waiting for other benchmarks (${others.map((p) => p.pid).join(', ')}), polling every ${pollMs / 1000} s…`);
    await sleep(pollMs);
    others = otherBenchmarks();
  }
  return { waited_ms: Date.now() - t0, under_load: others.length > 0, still_running: others.map((p) => `${p.pid} ${p.cmd.slice(0, 100)}`) };
}

/** The server in its own process; resolves with its URL and a stop(). */
async function startServer(work) {
  const dir = mkdtempSync(path.join(work, 'couch-'));
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (l) => resolve(JSON.parse(l).port));
    child.once('exit', (code) => reject(new Error(`couch server exited (${code})`)));
  });
  child.stdout.resume();
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function load(url, docs) {
  const t0 = performance.now();
  const put = await fetch(`${url}/${DB}`, { method: 'PUT' });
  if (put.status !== 201) throw new Error(`PUT ${DB}: ${put.status}`);
  for (let i = 0; i < docs; i += 5000) {
    const batch = [];
    for (let j = i; j < Math.min(docs, i + 5000); j++) {
      batch.push({ _id: `event-${String(j).padStart(7, '0')}`, type: 'event', n: j, level: j % 5, payload: 'x'.repeat(300), tags: ['shield', 'hazard', `zone-${j % 17}`], nested: { device: `dev-${j % 997}`, note: 'hello world' } });
    }
    const r = await fetch(`${url}/${DB}/_bulk_docs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ docs: batch }) });
    if (r.status !== 201) throw new Error(`_bulk_docs: ${r.status} ${(await r.text()).slice(0, 200)}`);
    await r.arrayBuffer();
  }
  const info = await (await fetch(`${url}/${DB}`)).json();
  if (info.doc_count !== docs) throw new Error(`loaded ${info.doc_count} documents, expected ${docs}`);
  return performance.now() - t0;
}

function measureCurl(url, file) {
  const rssDir = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-rss-'));
  const rssFile = path.join(rssDir, 'rss');
  const args = ['-s', '-f', '-o', file, `${url}/${DB}/_all_docs?include_docs=true`];
  const [c, a] = GNU_TIME ? [GNU_TIME, ['-f', '%M', '-o', rssFile, 'curl', ...args]] : ['curl', args];
  const t0 = performance.now();
  const r = spawnSync(c, a, { encoding: 'utf8' });
  const ms = performance.now() - t0;
  let rssKb;
  try {
    rssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  } catch {
    // no GNU time
  }
  rmSync(rssDir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`curl failed (${r.status}): ${r.stderr}`);
  return { ms, rssKb, bytes: statSync(file).size };
}

function policy(url, storageDir) {
  return `version: 1
storage:
  local: { type: local, path: ${JSON.stringify(storageDir)} }
targets:
  bench:
    engine: couchdb
    url: ${JSON.stringify(url)}
    databases: [${DB}]
    export: true
    schedule: { cron: "0 3 * * 0", retention: { keep_weekly: 4, keep_on_demand: 1 } }
`;
}

function artifactOf(storageDir) {
  const folder = path.join(storageDir, 'bench', DB);
  const f = readdirSync(folder).find((x) => x.endsWith('.ndjson.gz'));
  const m = readdirSync(folder).find((x) => x.endsWith('.manifest.json'));
  return { size: statSync(path.join(folder, f)).size, manifest: JSON.parse(readFileSync(path.join(folder, m), 'utf8')) };
}

/** One database size: a fresh server, the documents, then raw and bkp alternating. */
async function measureSize(work, docs, { runs, warmup, log, profile }) {
  const server = await startServer(work);
  try {
    log(`couchdb: ${docs.toLocaleString('en')} documents into a fresh server at ${server.url}…`);
    const loadMs = await load(server.url, docs);
    log(`couchdb: loaded in ${fmtMs(loadMs)}`);
    const rawFile = path.join(work, `raw-${docs}.json`);
    const storageDir = path.join(work, `storage-${docs}`);
    const policyFile = path.join(work, `policy-${docs}.yaml`);
    writeFileSync(policyFile, policy(server.url, storageDir));
    const raw = () => {
      rmSync(rawFile, { force: true });
      return measureCurl(server.url, rawFile);
    };
    const bkp = () => {
      rmSync(storageDir, { recursive: true, force: true });
      mkdirSync(storageDir);
      const r = runNode('bin/bkp', ['backup', 'bench', '-c', policyFile], { cwd: ROOT, rss: true, stdout: 'capture' });
      if (r.status !== 0) throw new Error(`bkp backup failed (${r.status}): ${(r.stdout ?? '').slice(-2000)}${r.stderr.slice(-2000)}`);
      return { ms: r.ms, rssKb: r.rssKb, ...artifactOf(storageDir) };
    };
    for (let i = 0; i < warmup; i++) {
      log(`couchdb ${docs}: warm-up ${i + 1}/${warmup}`);
      raw();
      bkp();
    }
    const res = { raw: [], bkp: [] };
    for (let i = 0; i < runs; i++) {
      const order = i % 2 ? [['bkp', bkp], ['raw', raw]] : [['raw', raw], ['bkp', bkp]];
      for (const [k, f] of order) res[k].push(f());
      log(`couchdb ${docs}: run ${i + 1}/${runs}: raw ${fmtMs(res.raw.at(-1).ms)}, bkp ${fmtMs(res.bkp.at(-1).ms)} (${fmtKb(res.bkp.at(-1).rssKb)})`);
    }
    const last = res.bkp.at(-1);
    if (last.manifest.facts.doc_count !== docs) throw new Error(`bkp exported ${last.manifest.facts.doc_count} documents, expected ${docs}`);
    let prof;
    if (profile) {
      rmSync(storageDir, { recursive: true, force: true });
      mkdirSync(storageDir);
      log(`couchdb ${docs}: profiling bkp once (node --cpu-prof)…`);
      prof = profileCli(ROOT, ['backup', 'bench', '-c', policyFile]);
    }
    const rawMs = median(res.raw.map((r) => r.ms));
    const bkpMs = median(res.bkp.map((r) => r.ms));
    return {
      docs,
      load_ms: loadMs,
      raw: { median_ms: rawMs, runs_ms: res.raw.map((r) => r.ms), bytes: res.raw.at(-1).bytes, peak_rss_kb: median(res.raw.map((r) => r.rssKb)), docs_per_s: docs / (rawMs / 1000) },
      bkp: {
        median_ms: bkpMs,
        runs_ms: res.bkp.map((r) => r.ms),
        artifact_bytes: last.size,
        ndjson_bytes: last.manifest.content_size,
        peak_rss_kb: median(res.bkp.map((r) => r.rssKb)),
        peak_rss_runs_kb: res.bkp.map((r) => r.rssKb),
        docs_per_s: docs / (bkpMs / 1000),
      },
      ratio: rawMs / bkpMs,
      profile: prof,
    };
  } finally {
    await server.stop();
  }
}

export async function runCouchdbBench({ docs = 200_000, smallDocs = 20_000, runs = 3, warmup = 1, wait = true, profile = true, log = (s) => process.stderr.write(`${s}\n`), print = console.log } = {}) {
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ missing: run npm run build first');
  const work = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-couchwork-'));
  try {
    const quiet = wait ? await waitForQuiet(log) : { waited_ms: 0, under_load: false, skipped: true };
    const small = await measureSize(work, smallDocs, { runs, warmup, log, profile: false });
    const large = await measureSize(work, docs, { runs, warmup, log, profile: false });
    const goalMet = large.ratio >= GOAL_RATIO;
    if (!goalMet && profile) {
      const again = await measureSize(work, docs, { runs: 1, warmup: 0, log, profile: true });
      large.profile = again.profile;
    }
    const rssGrowth = large.bkp.peak_rss_kb / small.bkp.peak_rss_kb;

    print(`\n### couchdb: export of ${docs.toLocaleString('en')} and ${smallDocs.toLocaleString('en')} documents (express-pouchdb 4.2, in-memory PouchDB 9)\n`);
    print(`Documents of ~${Math.round(large.raw.bytes / docs)} B in \`_all_docs?include_docs=true\`, first revisions; a fresh server per size (load: ${fmtMs(small.load_ms)} and ${fmtMs(large.load_ms)}). Median of ${runs} runs after ${warmup} warm-up, raw and bkp alternating; peak RSS by ${GNU_TIME ? 'GNU time -f %M' : 'n/a (GNU time missing)'}.`);
    if (quiet.under_load) print(`**Measured under load**: other benchmarks still running after ${fmtMs(quiet.waited_ms)}: ${quiet.still_running.join('; ')}`);
    print('');
    print('| documents | tool | wall median | throughput | ratio (bkp/raw) | output | peak RSS | goal met |');
    print('|---:|---|---:|---:|---:|---:|---:|:---:|');
    for (const s of [small, large]) {
      print(`| ${s.docs.toLocaleString('en')} | \`curl _all_docs?include_docs=true > FILE\` | ${fmtMs(s.raw.median_ms)} | ${fmtRate(s.docs, s.raw.median_ms)} | 1.00× | ${fmtBytes(s.raw.bytes)} JSON | ${fmtKb(s.raw.peak_rss_kb)} | (baseline) |`);
      print(`| ${s.docs.toLocaleString('en')} | \`bkp backup bench\` (export, local storage) | ${fmtMs(s.bkp.median_ms)} | ${fmtRate(s.docs, s.bkp.median_ms)} | ${s.ratio.toFixed(2)}× | ${fmtBytes(s.bkp.artifact_bytes)} gzip of ${fmtBytes(s.bkp.ndjson_bytes)} NDJSON | ${fmtKb(s.bkp.peak_rss_kb)} | ${s === large ? (goalMet ? 'yes (≥ 0.8×)' : '**no** (< 0.8×)') : ''} |`);
    }
    print('');
    print(`bkp peak RSS: ${fmtKb(small.bkp.peak_rss_kb)} at ${smallDocs.toLocaleString('en')} documents, ${fmtKb(large.bkp.peak_rss_kb)} at ${docs.toLocaleString('en')} (×${rssGrowth.toFixed(2)} for ×${(docs / smallDocs).toFixed(0)} the data: ${rssGrowth < 1.25 ? 'flat' : '**not flat**'}).`);
    print(`All runs (ms): ${[small, large].map((s) => `${s.docs}: raw ${s.raw.runs_ms.map((x) => x.toFixed(0)).join(', ')}; bkp ${s.bkp.runs_ms.map((x) => x.toFixed(0)).join(', ')}`).join(' — ')}.`);
    if (large.profile) printProfile(`bkp backup of ${docs.toLocaleString('en')} documents`, large.profile, print);
    const strip = (s) => ({ ...s, profile: undefined });
    return { goal_ratio: GOAL_RATIO, goal_met: goalMet, rss_growth: rssGrowth, quiet, small: strip(small), large: strip(large), profile: large.profile };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Options of this section, as parseArgs options (run.mjs strips them before its own parse). */
export const COUCHDB_OPTIONS = {
  'couchdb-docs': { type: 'string' }, 'couchdb-small-docs': { type: 'string' }, 'couchdb-runs': { type: 'string' },
  'couchdb-warmup': { type: 'string' }, 'couchdb-json': { type: 'string' },
  'no-wait': { type: 'boolean' }, 'no-profile': { type: 'boolean' },
};

export async function main(args = process.argv.slice(2)) {
  const { values: o } = parseArgs({ args, options: COUCHDB_OPTIONS, strict: true });
  const result = await runCouchdbBench({
    docs: Number(o['couchdb-docs'] ?? 200_000), smallDocs: Number(o['couchdb-small-docs'] ?? 20_000), runs: Number(o['couchdb-runs'] ?? 3),
    warmup: Number(o['couchdb-warmup'] ?? 1), wait: !o['no-wait'], profile: !o['no-profile'],
  });
  if (o['couchdb-json']) writeFileSync(o['couchdb-json'], `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}

/**
 * The hook bench/run.mjs calls before its own option parsing, as for etcd: when `--only` names
 * `couchdb`, runs this section with its options and returns `{ ran, rest, onlyCouchdb }`: `rest`
 * is argv without `couchdb` in --only and without this section's own options.
 */
export async function runFromBenchArgv(argv) {
  // --no-profile is run.mjs's own too: seen here and left for it. (--no-wait, the etcd
  // section's, is not run.mjs's: taken.)
  const kind = (name) =>
    name.startsWith('couchdb-') && COUCHDB_OPTIONS[name] ? 'value' : name === 'no-wait' ? 'flag' : name === 'no-profile' ? 'shared' : undefined;
  const { selected, mine, rest, otherOnly } = splitSectionArgv(argv, 'couchdb', kind);
  if (!selected) return { ran: false, rest: argv, onlyCouchdb: false };
  await main(mine);
  return { ran: true, rest, onlyCouchdb: !otherOnly };
}
