#!/usr/bin/env node
// `npm run bench` (after `npm run build`): measures bkp with real processes on real files and
// prints a Markdown table; never asserts. Results also go to bench/results/latest.json.
//
//   1. plan over a big catalog: 1,000 files targets × 365 nightly backups in one local storage
//      (730k files, generated once and cached under os.tmpdir()/bkp-bench-cache/), timed end to
//      end as `node bin/bkp plan -c POLICY --now ISO --json --allow-mass-prune > /dev/null`;
//   2. start-up: `node bin/bkp --version`, `node bin/bkp validate -c examples/quickstart.yaml`,
//      and `node -e 0` as the floor;
//   3. postgres (issue 3): `bkp backup` of a generated PostgreSQL database (~100 MiB and >= 1 GiB)
//      against raw `pg_dump -Fc`, borgmatic + borg and pgBackRest, on a private server the bench
//      starts (bench/lib/pg-bench.mjs says how). Needs PostgreSQL 15 (and, for the peers, the
//      Debian packages borgmatic, borgbackup, pgbackrest); takes several minutes.
// A measurement that misses its goal is profiled once with `node --cpu-prof`.
//
// Options: --only plan|startup|postgres|storage|etcd (repeatable or comma-separated; default: all)
//          --targets N (1000)  --days N (365)  --plan-runs N (3)  --startup-runs N (10)
//          --no-cache (generate into the temp folder, removed at the end)
//          --clean-cache (remove os.tmpdir()/bkp-bench-cache first)
//          --profile (profile every measurement)  --no-profile (never profile)
//          --pg-runs N (3)  --pg-warmup N (1)  --pg-small-mib N (100)  --pg-large-mib N (1024)
//          --pg-peers-small (also run borgmatic and pgBackRest on the small database)
//          --no-borg-repeat (skip borgmatic's second-archive row)
//          --install-peers (apt-get install borgmatic borgbackup pgbackrest when missing; root)
//          storage (issue 7; bench/lib/storage-bench.mjs says how): --storage-runs N (3)
//          --storage-big-mib N (2048)  --storage-small-mib N (200)
// bench/results/latest.json keeps the last results of every section: a run of some sections
// replaces theirs and keeps the others'.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cacheRoot, ensureCatalog, policyYaml } from './lib/fixture.mjs';
import { RSS_METHOD, runNode } from './lib/measure.mjs';
import { printProfile, profileCli } from './lib/profile.mjs';
import { fmtKb, fmtMs, median, percentile } from './lib/stats.mjs';
import { runPostgresBench } from './lib/pg-bench.mjs';
import { stopAllSync } from './lib/postgres.mjs';
import { runStorageBench } from './lib/storage-bench.mjs'; // --only storage (issue 7)

// ---- --only etcd (etcd snapshot benchmark): all of it lives in bench/lib/etcd-bench.mjs --------
// Runs before the option parsing below and removes `etcd` and its --etcd-* options from argv.
{
  const { runFromBenchArgv } = await import('./lib/etcd-bench.mjs');
  const etcdHook = await runFromBenchArgv(process.argv.slice(2));
  if (etcdHook.onlyEtcd) process.exit(0);
  process.argv.splice(2, Infinity, ...etcdHook.rest);
}
// ---- end of the --only etcd hook -----------------------------------------------------------------

// ---- --only couchdb (CouchDB export benchmark): all of it lives in bench/lib/couchdb-bench.mjs ----
// Runs before the option parsing below and removes `couchdb` and its --couchdb-* options from argv.
{
  const { runFromBenchArgv } = await import('./lib/couchdb-bench.mjs');
  const couchHook = await runFromBenchArgv(process.argv.slice(2));
  if (couchHook.onlyCouchdb) process.exit(0);
  process.argv.splice(2, Infinity, ...couchHook.rest);
}
// ---- end of the --only couchdb hook --------------------------------------------------------------

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    targets: { type: 'string', default: '1000' },
    days: { type: 'string', default: '365' },
    'plan-runs': { type: 'string', default: '3' },
    'startup-runs': { type: 'string', default: '10' },
    'no-cache': { type: 'boolean', default: false },
    'clean-cache': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    'pg-runs': { type: 'string', default: '3' },
    'pg-warmup': { type: 'string', default: '1' },
    'pg-small-mib': { type: 'string', default: '100' },
    'pg-large-mib': { type: 'string', default: '1024' },
    'pg-peers-small': { type: 'boolean', default: false },
    'no-borg-repeat': { type: 'boolean', default: false },
    'install-peers': { type: 'boolean', default: false },
    // --only storage (issue 7)
    'storage-runs': { type: 'string', default: '3' },
    'storage-big-mib': { type: 'string', default: '2048' },
    'storage-small-mib': { type: 'string', default: '200' },
  },
});

const SECTIONS = ['plan', 'startup', 'postgres', 'storage'];
const only = (opt.only ?? SECTIONS).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
for (const x of only) {
  if (!SECTIONS.includes(x)) {
    process.stderr.write(`bench: unknown section "${x}" for --only (one of ${SECTIONS.join(', ')})\n`);
    process.exit(2);
  }
}
const want = Object.fromEntries(SECTIONS.map((x) => [x, only.includes(x)]));

const PARAMS = { targets: Number(opt.targets), days: Number(opt.days), lastBackupDay: '2026-11-21', hourUtc: 23 };
// Half an hour after tonight's 23:00 fire: every target is due (one backup each) and retention
// prunes what keep_daily 7 / keep_weekly 4 / keep_monthly 12 does not keep.
const NOW = '2026-11-22T23:30:00Z';
const PLAN_RUNS = Number(opt['plan-runs']);
const STARTUP_RUNS = Number(opt['startup-runs']);
const GOAL_PLAN_MS = 2000;
const GOAL_STARTUP_MS = 250;

const log = (line) => process.stderr.write(`${line}\n`);
const out = [];
const print = (line = '') => {
  out.push(line);
  console.log(line);
};

// ---- the run's temp folder, removed whatever happens -------------------------------------------
const tempDir = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-'));
const cleanup = () => rmSync(tempDir, { recursive: true, force: true });
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stopAllSync();
    cleanup();
    process.exit(130);
  });
}

function machine() {
  const cpus = os.cpus();
  let git;
  try {
    git = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    git = undefined;
  }
  return {
    date: new Date().toISOString(),
    cores: cpus.length,
    cpu: cpus[0]?.model?.trim(),
    memory_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    git_head: git,
    rss_method: RSS_METHOD,
    loadavg_1m_at_start: +os.loadavg()[0].toFixed(2),
  };
}

function timed(label, script, args, { runs, rss = false, warmup = 1 }) {
  log(`measuring ${label} (${warmup} warm-up + ${runs} runs)…`);
  for (let i = 0; i < warmup; i++) runNode(script, args, { cwd: ROOT });
  const samples = [];
  const rssKb = [];
  const statuses = new Set();
  for (let i = 0; i < runs; i++) {
    const r = runNode(script, args, { cwd: ROOT, rss });
    samples.push(r.ms);
    if (rss) rssKb.push(r.rssKb);
    statuses.add(r.status);
    if (r.status !== 0) log(`  run ${i + 1}: exit ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  }
  return {
    samples_ms: samples.map((x) => +x.toFixed(1)),
    median_ms: median(samples),
    p90_ms: percentile(samples, 90),
    peak_rss_kb: rss ? Math.max(...rssKb) : undefined,
    median_rss_kb: rss ? median(rssKb) : undefined,
    exit_codes: [...statuses],
  };
}

function summarizePlan(json) {
  const plan = JSON.parse(json);
  const byKind = {};
  const prunesPerTarget = new Map();
  for (const a of plan.actions) {
    const k = `${a.kind}/${a.op}`;
    byKind[k] = (byKind[k] ?? 0) + 1;
    if (a.kind === 'prune') prunesPerTarget.set(a.target, (prunesPerTarget.get(a.target) ?? 0) + 1);
  }
  const per = [...prunesPerTarget.values()];
  return {
    actions: plan.actions.length,
    by_kind: byKind,
    summary: plan.summary,
    targets: plan.targets?.length,
    prunes_per_target: per.length ? { min: Math.min(...per), median: median(per), max: Math.max(...per) } : undefined,
    diagnostics: plan.diagnostics?.map((d) => `${d.severity}: ${d.code ? `[${d.code}] ` : ''}${d.summary ?? d.message}`) ?? [],
  };
}

// ---- 1. plan over a big catalog ----------------------------------------------------------------
const info = machine();
const measurements = [];
let fixture;
let policyMs;
let planShape;
let refusal;
const cache = !opt['no-cache'];
if (want.plan) {
if (opt['clean-cache']) {
  log(`removing the fixture cache ${cacheRoot()}`);
  rmSync(cacheRoot(), { recursive: true, force: true });
}
log(`fixture: ${PARAMS.targets} targets × ${PARAMS.days} nightly backups (${2 * PARAMS.targets * PARAMS.days} files)…`);
fixture = ensureCatalog(PARAMS, { cache, tempDir, log });
log(fixture.reused ? `fixture reused from ${fixture.dir}` : `fixture generated in ${fmtMs(fixture.generation.ms)} at ${fixture.dir}`);
const policyFile = path.join(tempDir, 'bkp.yaml');
const tPolicy = process.hrtime.bigint();
writeFileSync(policyFile, policyYaml(PARAMS, fixture));
policyMs = Number(process.hrtime.bigint() - tPolicy) / 1e6;

// The steady state: a year of dailies kept (keep_daily 400), so tonight's plan is one backup per
// target and no prune, but retention still walks all 365,000 backups. This is the goal measurement.
const steadyFile = path.join(tempDir, 'steady.yaml');
writeFileSync(steadyFile, policyYaml(PARAMS, fixture, '{ keep_daily: 400 }'));
const steadyArgs = ['plan', '-c', steadyFile, '--now', NOW, '--json'];
log('plan, steady state (keep_daily 400)…');
const steadyM = timed('plan (steady state)', 'bin/bkp', steadyArgs, { runs: PLAN_RUNS, rss: true, warmup: 0 });

const planArgs = ['plan', '-c', policyFile, '--now', NOW, '--json'];
const massArgs = [...planArgs, '--allow-mass-prune'];

log('plan without --allow-mass-prune (expected to be refused)…');
const refused = runNode('bin/bkp', planArgs, { cwd: ROOT, stdout: 'capture' });
try {
  const s = summarizePlan(refused.stdout);
  refusal = { exit_code: refused.status, errors: s.diagnostics.filter((d) => d.startsWith('error')).length, first_error: s.diagnostics.find((d) => d.startsWith('error')) };
} catch {
  refusal = { exit_code: refused.status, stderr: refused.stderr.trim().slice(0, 300) };
}

log('plan with --allow-mass-prune, once, to count its actions…');
const counted = runNode('bin/bkp', massArgs, { cwd: ROOT, stdout: 'capture' });
try {
  planShape = { exit_code: counted.status, ...summarizePlan(counted.stdout) };
} catch (err) {
  planShape = { exit_code: counted.status, error: `could not parse the plan JSON: ${err.message}`, stderr: counted.stderr.trim().slice(0, 500) };
}

const planM = timed('plan (big catalog)', 'bin/bkp', massArgs, { runs: PLAN_RUNS, rss: true, warmup: 0 });

measurements.push(
  {
    section: 'plan',
    name: `plan, ${PARAMS.targets} targets × ${PARAMS.days} backups, steady state (keep_daily 400: ${PARAMS.targets} backups, 0 prunes)`,
    command: `node bin/bkp ${steadyArgs.map((a) => (a === steadyFile ? 'POLICY' : a)).join(' ')} > /dev/null`,
    args: steadyArgs,
    runs: PLAN_RUNS,
    ...steadyM,
    goal_ms: GOAL_PLAN_MS,
    met: steadyM.median_ms <= GOAL_PLAN_MS && steadyM.exit_codes.every((c) => c === 0),
  },
  {
    section: 'plan',
    name: `plan, ${PARAMS.targets} targets × ${PARAMS.days} backups, retention cut to 7/4/12 (prunes ~345 per target)`,
    command: `node bin/bkp ${massArgs.map((a) => (a === policyFile ? 'POLICY' : a)).join(' ')} > /dev/null`,
    args: massArgs,
    runs: PLAN_RUNS,
    ...planM,
    goal_ms: GOAL_PLAN_MS,
    met: planM.median_ms <= GOAL_PLAN_MS && planM.exit_codes.every((c) => c === 0),
  },
);
}

// ---- 2. start-up -------------------------------------------------------------------------------
if (want.startup) {
const floorM = timed('node -e 0', '-e', ['0'], { runs: STARTUP_RUNS });
const versionM = timed('bkp --version', 'bin/bkp', ['--version'], { runs: STARTUP_RUNS });
const validateM = timed('bkp validate quickstart', 'bin/bkp', ['validate', '-c', 'examples/quickstart.yaml'], { runs: STARTUP_RUNS });
measurements.push(
  { section: 'startup', name: 'bkp --version', command: 'node bin/bkp --version', args: ['--version'], runs: STARTUP_RUNS, ...versionM, goal_ms: GOAL_STARTUP_MS, met: versionM.median_ms <= GOAL_STARTUP_MS },
  {
    section: 'startup',
    name: 'bkp validate quickstart',
    command: 'node bin/bkp validate -c examples/quickstart.yaml',
    args: ['validate', '-c', 'examples/quickstart.yaml'],
    runs: STARTUP_RUNS,
    ...validateM,
    goal_ms: GOAL_STARTUP_MS,
    met: validateM.median_ms <= GOAL_STARTUP_MS && validateM.exit_codes.every((c) => c === 0),
  },
  { section: 'startup', name: 'node -e 0 (floor)', command: 'node -e 0', runs: STARTUP_RUNS, ...floorM, goal_ms: undefined, met: undefined },
);
}

// ---- 3. PostgreSQL -------------------------------------------------------------------------------
let postgres;
if (want.postgres) {
  log('postgres: bkp backup against raw pg_dump, borgmatic + borg and pgBackRest…');
  postgres = await runPostgresBench({
    root: ROOT,
    tempDir,
    log,
    runs: Number(opt['pg-runs']),
    warmup: Number(opt['pg-warmup']),
    smallMiB: Number(opt['pg-small-mib']),
    largeMiB: Number(opt['pg-large-mib']),
    peersOnSmall: opt['pg-peers-small'],
    borgRepeat: !opt['no-borg-repeat'],
    installPeers: opt['install-peers'],
    profile: opt['no-profile'] ? 'never' : opt.profile ? 'always' : 'auto',
  });
}

// ---- storage (issue 7): bkp's copy path to sftp / s3 / local against scp, sftp, an SDK Upload --------
let storage;
if (want.storage) {
  log('storage: bkp copies of a ~2 GiB artifact to sftp, s3 and local (encrypted) storage against scp, sftp and an SDK Upload…');
  storage = await runStorageBench({
    root: ROOT,
    tempDir,
    log,
    runs: Number(opt['storage-runs']),
    bigMiB: Number(opt['storage-big-mib']),
    smallMiB: Number(opt['storage-small-mib']),
    clean: opt['clean-cache'],
    profile: opt['no-profile'] ? 'never' : opt.profile ? 'always' : 'auto',
  });
}

// ---- 4. report ---------------------------------------------------------------------------------
print(`## bkp bench — ${info.date}`);
print();
print(`Machine: ${info.cores} cores (${info.cpu}), ${info.memory_gib} GiB, ${info.os}; node ${info.node}; bkp at ${info.git_head ?? '?'}. Sections: ${only.join(', ')}.`);
const loadEnd = os.loadavg()[0];
info.loadavg_1m_at_end = +loadEnd.toFixed(2);
const busy = info.loadavg_1m_at_start > info.cores / 2;
print(
  `Load average (1 min): ${info.loadavg_1m_at_start} before the bench started, ${info.loadavg_1m_at_end} at the end (this one includes the bench's own runs)` +
    (busy ? ' — the machine was busy with other work, so figures are noisier and slower than on an idle machine.' : '.'),
);
print(`Figures are medians of real process runs (wall clock from spawn to exit); peak RSS by ${info.rss_method}.`);
if (want.plan) {
  print(
    `Fixture: ${PARAMS.targets} files targets × ${PARAMS.days} nightly backups = ${fixture.generation.files.toLocaleString('en')} files in one local storage; ` +
      (fixture.reused
        ? `reused from the cache (${fixture.dir}; generated ${fixture.generation.generated_at} in ${fmtMs(fixture.generation.ms)}).`
        : `generated in ${fmtMs(fixture.generation.ms)}${cache ? `, cached in ${fixture.dir}` : ''}.`) +
      ` Policy file written in ${fmtMs(policyMs)}. --now ${NOW}.`,
  );
}
if (measurements.length > 0) {
  print();
  print('| measurement | median | p90 or peak RSS | goal | met? |');
  print('|---|---:|---:|---:|---|');
  for (const m of measurements) {
    const second = m.peak_rss_kb !== undefined ? `peak RSS ${fmtKb(m.peak_rss_kb)}` : `p90 ${fmtMs(m.p90_ms)}`;
    const runsNote = ` (${m.runs} runs)`;
    const bad = m.exit_codes.some((c) => c !== 0) ? ` — exit ${m.exit_codes.join('/')}` : '';
    const met = m.met === undefined ? '— (reference)' : m.met ? 'yes' : `**no**${bad}`;
    print(`| ${m.name}${runsNote} | ${fmtMs(m.median_ms)} | ${second} | ${m.goal_ms ? `≤ ${fmtMs(m.goal_ms)}` : '—'} | ${met} |`);
  }
}
if (want.plan) {
  print();
  if (planShape.error) {
    print(`Plan: ${planShape.error} (exit ${planShape.exit_code}). ${planShape.stderr ?? ''}`);
  } else {
    const kinds = Object.entries(planShape.by_kind)
      .map(([k, n]) => `${n.toLocaleString('en')} ${k}`)
      .join(', ');
    const ppt = planShape.prunes_per_target;
    print(
      `Plan did real work: ${planShape.actions.toLocaleString('en')} actions over ${planShape.targets} targets (${kinds}); ` +
        (ppt ? `prunes per target min ${ppt.min} / median ${ppt.median} / max ${ppt.max}; ` : '') +
        `exit ${planShape.exit_code}.`,
    );
  }
  print(
    `Without --allow-mass-prune the plan is refused: exit ${refusal.exit_code}` +
      (refusal.first_error ? `, ${refusal.errors} error diagnostics, e.g. "${refusal.first_error}".` : refusal.stderr ? `: ${refusal.stderr}` : '.'),
  );
}

// ---- profiles of what missed its goal ---------------------------------------------------------
const profiles = [];
if (!opt['no-profile']) {
  for (const m of measurements) {
    if (!m.args || (m.met !== false && !opt.profile)) continue;
    log(`profiling ${m.name}…`);
    try {
      const p = profileCli(ROOT, m.args, { intervalUs: m.median_ms > 1000 ? 500 : 100 });
      profiles.push({ section: m.section, measurement: m.name, ...p });
      printProfile(m.name, p, print);
    } catch (err) {
      print(`\nProfile of ${m.name} failed: ${err.message}`);
    }
  }
}

if (postgres) {
  print();
  print(`### PostgreSQL`);
  print();
  for (const line of postgres.lines) print(line);
}

if (storage) {
  print();
  print('### Storage (issue 7)');
  print();
  for (const line of storage.lines) print(line);
}

// ---- results: merged with what the file holds for the sections that did not run ----------------
const resultsDir = path.join(ROOT, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
writeFileSync(path.join(resultsDir, '.gitignore'), 'latest.json\n');
const latestFile = path.join(resultsDir, 'latest.json');
let previous = {};
try {
  if (existsSync(latestFile)) previous = JSON.parse(readFileSync(latestFile, 'utf8'));
} catch {
  previous = {};
}
// Entries written before sections existed: plan measurements are named "plan, …".
const sectionOf = (m) => m.section ?? (m.name?.startsWith('plan') ? 'plan' : 'startup');
const result = {
  ...previous,
  machine: info,
  machine_by_section: { ...(previous.machine_by_section ?? {}), ...Object.fromEntries(only.map((x) => [x, info])) },
  measurements: [
    ...(previous.measurements ?? []).filter((m) => !want[sectionOf(m)]).map((m) => ({ section: sectionOf(m), ...m })),
    ...measurements.map(({ args, ...m }) => m),
  ],
  profiles: [...(previous.profiles ?? []).filter((p) => !want[p.section ?? 'plan']), ...profiles],
};
if (want.plan) {
  result.params = { ...PARAMS, now: NOW, plan_runs: PLAN_RUNS, startup_runs: STARTUP_RUNS };
  result.fixture = { dir: fixture.dir, cached: cache, reused: fixture.reused, generation: fixture.generation, policy_write_ms: policyMs };
  result.plan = planShape;
  result.refused_without_allow_mass_prune = refusal;
}
if (postgres) result.postgres = { date: info.date, ...postgres.result };
if (storage) result.storage = { date: info.date, ...storage.result }; // issue 7
writeFileSync(latestFile, `${JSON.stringify(result, null, 2)}\n`);
log(`\nwrote bench/results/latest.json${want.plan && cache ? `; the fixture stays cached in ${fixture.dir} (--clean-cache removes it)` : ''}`);
