// The PostgreSQL section of `npm run bench` (issues 3 and 9): bkp's `postgres` engine with one
// job (`pg_dump -Fc`, streamed) and with two (`pg_dump -Fd -j 2`, streamed as a tar while it
// runs), with each compression (gzip by pg_dump; zstd and lz4 compressing the stream, as pg_dump
// 15 knows only gzip; none), against the raw tools at the same settings, borgmatic + borg (its
// postgresql hook), restic `--stdin` and pgBackRest, on a private PostgreSQL server holding the
// generated six-table shop database (bench/lib/pg-shop.mjs).
//
// For each size (~100 MiB and >= 1 GiB by pg_database_size): a fresh server of its own
// (bench/lib/postgres.mjs; fsync off), the database generated (timed), then one warm-up run and N
// timed runs of each tool (median reported), the tools taking turns (raw, bkp, borgmatic…, raw,
// bkp…) so that the load of a shared machine falls on all of them alike; page cache warm, `sync`
// before every run so that no run pays for the previous one's write-back, outputs removed between
// runs (untimed). Besides wall time, the CPU time (user + system) of each tool's whole process tree,
// which the load of other work on the machine disturbs less. The 100 MiB size runs raw pg_dump and
// bkp's default only: it is there to show that bkp's memory does not grow with the database.
//
// Before the runs, a compression study on the large database: one uncompressed directory dump,
// tarred, compressed by each candidate method and level on one core (CPU time and size against
// gzip-6): the data behind the default (the fastest method within 10% of gzip-6's size).
//
//   raw …      pg_dump itself at the settings of each bkp variant (-Fc -Z6, -Fc -Z0 | zstd…,
//              -Fd -j2 -Z6, -Fd -j2 -Z0 then tar | zstd…), and -Fd -j2 -Z1 (issue 9's reference).
//              Durability alike: pg_dump -f fsyncs what it writes, the pipelines `sync FILE`
//              (and skip the fsync of their scratch folder, --no-sync, as bkp does), and bkp's
//              local storage fsyncs the artifact.
//   bkp …      node bin/bkp backup TARGET -c POLICY, one target per variant, local storage
//   borgmatic  borgmatic -c CONFIG create, into a repository made just before by `borgmatic init
//              --encryption none` (untimed); then, unless --no-borg-repeat, a second `create` into
//              the same repository, which borg deduplicates (its own row)
//   restic     pg_dump -Fc | restic backup --stdin, into a repository made just before (untimed)
//   pgBackRest pgbackrest --stanza=bench backup --type=full       (the whole cluster, physical)
//
// The logical tools run the same pg_dump (the first on PATH, as bkp picks it) over TCP on
// 127.0.0.1 with a password. pgBackRest reads the data folder and talks to the server through its
// unix socket as the postgres OS user; the bench restarts the server with archive_mode=on and
// archive_command='pgbackrest … archive-push %p' for it.
//
// Peak RSS: bkp's node process reports its own high-water mark (process.resourceUsage().maxRSS,
// through bench/lib/rss-wrapper.mjs, which runs the CLI as bin/bkp does); every process of every
// tree is also followed through /proc (VmHWM per command name) and GNU time gives the largest
// process of the tree. A peer that is not installed or fails gets "not run: <reason>", never a number.
//
// BKP_BENCH_PG_TOOLS=id,id… runs only those rows (ids as in the JSON results), for quick checks.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateShop } from './pg-shop.mjs';
import { AS_ROOT, asPostgres, findPgBinDir, pgEnv, startPostgres } from './postgres.mjs';
import { runMeasured } from './proc.mjs';
import { printProfile, profileCli } from './profile.mjs';
import { fmtKb, fmtMs, median } from './stats.mjs';

const WRAPPER = fileURLToPath(new URL('./rss-wrapper.mjs', import.meta.url));
const DB = 'shop';
export const GOAL_RATIO = 1.05;
export const GOAL_RSS_BYTES = 120e6; // "≤ 120 MB"
export const GOAL_MIBS = 145; // issue 9: a full backup at ≥ 145 MiB/s on 2 cores
export const GOAL_SIZE = 1.1; // output within 10% of gzip-6's (raw pg_dump -Fc)
const FLAT_TOLERANCE = 1.1; // RSS at 1 GiB within 10% of RSS at 100 MiB counts as flat
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) return { ok: false, out: '', err: r.error.code === 'ENOENT' ? `${cmd} is not installed` : r.error.message };
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

function debVersion(pkg) {
  const r = sh('dpkg-query', ['-W', '-f', '${Version}', pkg]);
  return r.ok && r.out ? r.out : undefined;
}

function duBytes(dir) {
  let total = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += statSync(p).size;
    }
  };
  if (existsSync(dir)) walk(dir);
  return total;
}

const lastLines = (s, n = 3) => s.trim().split('\n').slice(-n).join(' / ').slice(0, 400);
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;
const syncDisks = () => spawnSync('sync');

/** Tool versions, and which peers can run. */
export function toolVersions(installPeers, log) {
  const missing = ['borgmatic', 'borg', 'pgbackrest', 'restic'].filter((b) => !sh('which', [b]).ok);
  if (missing.length && installPeers) {
    if (!AS_ROOT) log('--install-peers needs root (apt-get); not installing');
    else {
      log(`installing ${missing.join(', ')} with apt-get (Debian packages borgmatic borgbackup pgbackrest restic)…`);
      sh('apt-get', ['install', '-y', '-q', 'borgmatic', 'borgbackup', 'pgbackrest', 'restic'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    }
  }
  const v = {
    postgres: sh(path.join(findPgBinDir() ?? '/nonexistent', 'postgres'), ['--version']).out || undefined,
    pg_dump: sh('pg_dump', ['--version']).out || undefined,
    pg_dump_path: sh('which', ['pg_dump']).out || undefined,
    node: process.version,
    borgmatic: sh('borgmatic', ['--version']),
    borg: sh('borg', ['--version']),
    pgbackrest: sh('pgbackrest', ['version']),
    restic: sh('restic', ['version']),
    zstd: sh('zstd', ['--version']),
    lz4: sh('lz4', ['--version']),
  };
  return {
    postgres: v.postgres,
    pg_dump: v.pg_dump,
    pg_dump_path: v.pg_dump_path,
    node: v.node,
    borgmatic: v.borgmatic.ok ? v.borgmatic.out : undefined,
    borgmatic_deb: debVersion('borgmatic'),
    borg: v.borg.ok ? v.borg.out : undefined,
    borg_deb: debVersion('borgbackup'),
    pgbackrest: v.pgbackrest.ok ? v.pgbackrest.out : undefined,
    pgbackrest_deb: debVersion('pgbackrest'),
    borgmatic_missing: !v.borgmatic.ok ? `borgmatic is not installed (apt-get install borgmatic borgbackup, or run the bench with --install-peers)` : !v.borg.ok ? 'borg is not installed (apt-get install borgbackup)' : undefined,
    pgbackrest_missing: !v.pgbackrest.ok ? 'pgbackrest is not installed (apt-get install pgbackrest, or run the bench with --install-peers)' : undefined,
    restic: v.restic.ok ? v.restic.out.split('\n')[0] : undefined,
    restic_deb: debVersion('restic'),
    restic_missing: !v.restic.ok ? 'restic is not installed (apt-get install restic, or run the bench with --install-peers)' : undefined,
    zstd: v.zstd.ok ? (/v(\d+\.\d+\.\d+)/.exec(v.zstd.out)?.[1] ?? v.zstd.out) : undefined,
    lz4: v.lz4.ok ? (/v(\d+\.\d+\.\d+)/.exec(v.lz4.out + v.lz4.err)?.[1] ?? 'installed') : undefined,
  };
}

/**
 * One tool's measurements, taken one run at a time so that the tools of a size can take turns
 * (round-robin: raw, bkp, borgmatic…, then again), which spreads the load of a shared machine
 * evenly over them. `step(i)` does the untimed preparation of run i and returns
 * { cmd, args, env, cwd, after(result) → { outputBytes, selfRssKb? } }.
 */
function toolRunner(label, { warmup, step, log }) {
  const samples = [];
  const cpu = [];
  const outs = [];
  const selfRss = [];
  const maxRss = [];
  const tree = [];
  const byCommand = {};
  let failed;
  let facts; // bkp's manifest facts of the last run
  return {
    label,
    get failed() {
      return failed;
    },
    async runOnce(i) {
      if (failed) return;
      let s;
      try {
        s = await step(i);
      } catch (err) {
        failed = `preparation failed: ${lastLines(err.message, 4)}`;
        return;
      }
      syncDisks();
      const r = await runMeasured(s.cmd, s.args, { env: s.env, cwd: s.cwd });
      if (r.status !== 0) {
        failed = `exit ${r.status ?? r.signal}: ${lastLines(r.stderr)}`;
        return;
      }
      let after;
      try {
        after = await s.after(r);
      } catch (err) {
        failed = `could not read its output: ${err.message}`;
        return;
      }
      log(
        `    ${label}, run ${i + 1}${i < warmup ? ' (warm-up)' : ''}: ${fmtMs(r.ms)}, CPU ${r.cpuS?.toFixed(1) ?? '?'} s, output ${mib(after.outputBytes)}` +
          `${after.selfRssKb ? `, own RSS ${fmtKb(after.selfRssKb)}` : ''}`,
      );
      if (i < warmup) return;
      samples.push(r.ms);
      if (r.cpuS !== undefined) cpu.push(r.cpuS);
      outs.push(after.outputBytes);
      if (after.facts) facts = after.facts;
      if (after.selfRssKb) selfRss.push(after.selfRssKb);
      if (r.maxRssKb) maxRss.push(r.maxRssKb);
      tree.push(r.treeRssKb);
      for (const [k, v] of Object.entries(r.byCommand)) byCommand[k] = Math.max(byCommand[k] ?? 0, v);
    },
    result() {
      if (failed) return { failed };
      return {
        samples_ms: samples.map((x) => +x.toFixed(0)),
        median_ms: median(samples),
        cpu_samples_s: cpu.map((x) => +x.toFixed(2)),
        median_cpu_s: cpu.length ? median(cpu) : undefined,
        output_bytes: outs[outs.length - 1],
        ...(facts ? { facts } : {}),
        rss: {
          self_peak_kb: selfRss.length ? Math.max(...selfRss) : undefined,
          self_samples_kb: selfRss,
          largest_process_kb: maxRss.length ? Math.max(...maxRss) : undefined,
          tree_sum_sampled_kb: tree.length ? Math.max(...tree) : undefined,
          by_command_kb: byCommand,
        },
      };
    },
  };
}

/** `borg 95 MiB, pg_dump 9 MiB` from the per-command peaks, biggest first, helpers left out. */
function commandsCell(byCommand, skip = []) {
  const hidden = new Set(['sh', 'runuser', 'su', 'time', 'sync', 'cat', ...skip]);
  return Object.entries(byCommand)
    .filter(([k, v]) => !hidden.has(k) && v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fmtKb(v)}`)
    .join(', ');
}

/** bkp's variants: one and two jobs × each compression, then the default settings. */
const VARIANTS = [1, 2].flatMap((jobs) => ['gzip', 'zstd', 'lz4', 'none'].map((compression) => ({ id: `bkp-j${jobs}-${compression}`, target: `j${jobs}-${compression}`, jobs, compression })));
const DEFAULT_VARIANT = { id: 'bkp-default', target: 'default' };
/** The raw pg_dump run at the settings of each bkp variant (`equal`), plus issue 9's -Fd -j2 -Z1. */
const RAW = [
  { id: 'raw-fc', settings: 'custom, gzip 6', command: 'pg_dump -Fc -f FILE shop', equalOf: 'bkp-j1-gzip', out: 'file', shell: (f) => `pg_dump -Fc -f ${f} ${DB}` },
  { id: 'raw-fc-zstd', settings: 'custom, zstd 1 (stream)', command: 'pg_dump -Fc -Z0 shop | zstd -T0 -1 > FILE; sync FILE', equalOf: 'bkp-j1-zstd', out: 'file', shell: (f) => `pg_dump -Fc -Z0 ${DB} | zstd -T0 -1 -q -c > ${f} && sync ${f}` },
  { id: 'raw-fc-lz4', settings: 'custom, lz4 1 (stream)', command: 'pg_dump -Fc -Z0 shop | lz4 -1 > FILE; sync FILE', equalOf: 'bkp-j1-lz4', out: 'file', shell: (f) => `pg_dump -Fc -Z0 ${DB} | lz4 -1 -q -c > ${f} && sync ${f}` },
  { id: 'raw-fc-z0', settings: 'custom, none', command: 'pg_dump -Fc -Z0 -f FILE shop', equalOf: 'bkp-j1-none', out: 'file', shell: (f) => `pg_dump -Fc -Z0 -f ${f} ${DB}` },
  { id: 'raw-fd-z6', settings: 'directory -j2, gzip 6', command: 'pg_dump -Fd -j2 -Z6 -f DIR shop', equalOf: 'bkp-j2-gzip', out: 'dir', shell: (d) => `pg_dump -Fd -j2 -Z6 -f ${d} ${DB}` },
  { id: 'raw-fd-z1', settings: 'directory -j2, gzip 1', command: 'pg_dump -Fd -j2 -Z1 -f DIR shop', out: 'dir', shell: (d) => `pg_dump -Fd -j2 -Z1 -f ${d} ${DB}` },
  {
    id: 'raw-fd-zstd',
    settings: 'directory -j2, zstd 1 (tar stream)',
    command: 'pg_dump -Fd -j2 -Z0 --no-sync -f DIR shop && tar -cC DIR . | zstd -T0 -1 > FILE; sync FILE',
    equalOf: 'bkp-j2-zstd',
    out: 'file',
    shell: (f) => `pg_dump -Fd -j2 -Z0 --no-sync -f ${f}.d ${DB} && tar -cf - -C ${f}.d . | zstd -T0 -1 -q -c > ${f} && sync ${f} && rm -rf ${f}.d`,
  },
  {
    id: 'raw-fd-lz4',
    settings: 'directory -j2, lz4 1 (tar stream)',
    command: 'pg_dump -Fd -j2 -Z0 --no-sync -f DIR shop && tar -cC DIR . | lz4 -1 > FILE; sync FILE',
    equalOf: 'bkp-j2-lz4',
    out: 'file',
    shell: (f) => `pg_dump -Fd -j2 -Z0 --no-sync -f ${f}.d ${DB} && tar -cf - -C ${f}.d . | lz4 -1 -q -c > ${f} && sync ${f} && rm -rf ${f}.d`,
  },
  { id: 'raw-fd-z0', settings: 'directory -j2, none', command: 'pg_dump -Fd -j2 -Z0 -f DIR shop', equalOf: 'bkp-j2-none', out: 'dir', shell: (d) => `pg_dump -Fd -j2 -Z0 -f ${d} ${DB}` },
];
/** The compression study's candidates, each on one core over the same uncompressed dump. */
const STUDY = [
  { method: 'gzip', level: 6, cmd: (f, o) => `gzip -6 -c ${f} > ${o}` },
  { method: 'gzip', level: 1, cmd: (f, o) => `gzip -1 -c ${f} > ${o}` },
  { method: 'zstd', level: 1, cmd: (f, o) => `zstd -T1 -1 -q -c ${f} > ${o}` },
  { method: 'zstd', level: 2, cmd: (f, o) => `zstd -T1 -2 -q -c ${f} > ${o}` },
  { method: 'zstd', level: 3, cmd: (f, o) => `zstd -T1 -3 -q -c ${f} > ${o}` },
  { method: 'lz4', level: 1, cmd: (f, o) => `lz4 -1 -q -c ${f} > ${o}` },
];

function bkpPolicy() {
  const target = (name, extra) => `  ${name}:
    engine: postgres
    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }
    databases: [${DB}]
    temp_dir: ./tmp
    schedule: nightly
${extra}`;
  return `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly: { cron: "0 23 * * *", retention: { keep_daily: 7, keep_on_demand: 100 } }
targets:
${VARIANTS.map((v) => target(v.target, `    jobs: ${v.jobs}\n    compression: ${v.compression}\n`)).join('')}${target(DEFAULT_VARIANT.target, '')}`;
}

function borgmaticConfig(dir, server) {
  // borgmatic 1.7 layout (location / storage / hooks). No compression setting: borg's default (lz4).
  return `location:
  repositories: [${JSON.stringify(path.join(dir, 'repo'))}]
  borgmatic_source_directory: ${JSON.stringify(path.join(dir, 'borgmatic'))}
storage:
  borg_base_directory: ${JSON.stringify(path.join(dir, 'borg-base'))}
retention:
  keep_daily: 7
hooks:
  postgresql_databases:
    - name: ${DB}
      hostname: 127.0.0.1
      port: ${server.port}
      username: postgres
      password: ${JSON.stringify(server.password)}
`;
}

/**
 * One uncompressed directory dump of the database, tarred, then each candidate of STUDY on it,
 * `runs` times on one core: CPU seconds and output size against gzip-6. Returns the rows and the
 * fastest candidate within GOAL_SIZE of gzip-6.
 */
async function compressionStudy(server, work, { runs, log }) {
  const dir = path.join(work, 'study');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    const dump = sh('pg_dump', ['-Fd', '-j2', '-Z0', '-f', path.join(dir, 'd'), DB], { env: server.env(DB) });
    if (!dump.ok) throw new Error(`pg_dump failed: ${dump.err}`);
    const tar = path.join(dir, 'dump.tar');
    const t = sh('tar', ['-cf', tar, '-C', path.join(dir, 'd'), '.']);
    if (!t.ok) throw new Error(`tar failed: ${t.err}`);
    rmSync(path.join(dir, 'd'), { recursive: true, force: true });
    const input = statSync(tar).size;
    const rows = [];
    for (const c of STUDY) {
      const cpu = [];
      const wall = [];
      let bytes;
      for (let i = 0; i < runs; i++) {
        const out = path.join(dir, 'out');
        const r = await runMeasured('sh', ['-c', c.cmd(tar, out)]);
        if (r.status !== 0) throw new Error(`${c.method} -${c.level} failed: ${lastLines(r.stderr)}`);
        bytes = statSync(out).size;
        rmSync(out, { force: true });
        cpu.push(r.cpuS);
        wall.push(r.ms);
      }
      const row = { method: c.method, level: c.level, bytes, cpu_s: Math.min(...cpu), wall_ms: Math.min(...wall) };
      log(`  compression study: ${c.method} ${c.level}: ${mib(bytes)}, CPU ${row.cpu_s.toFixed(1)} s`);
      rows.push(row);
    }
    const ref = rows.find((r) => r.method === 'gzip' && r.level === 6);
    for (const r of rows) {
      r.size_vs_gzip6 = r.bytes / ref.bytes;
      r.mib_per_cpu_s = input / 2 ** 20 / r.cpu_s;
    }
    const pick = rows.filter((r) => r.size_vs_gzip6 <= GOAL_SIZE).sort((a, b) => a.cpu_s - b.cpu_s)[0];
    return { input_bytes: input, rows, pick: pick && { method: pick.method, level: pick.level } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The whole section. opts: { root, tempDir, log, runs, warmup, smallMiB, largeMiB, installPeers,
 * borgRepeat, peersOnSmall, profile: 'auto' | 'always' | 'never' }.
 * Returns { result (JSON), lines (Markdown) }.
 */
export async function runPostgresBench(opts) {
  const { root, tempDir, log } = opts;
  const only = process.env.BKP_BENCH_PG_TOOLS ? new Set(process.env.BKP_BENCH_PG_TOOLS.split(',').map((x) => x.trim())) : undefined;
  const wanted = (id) => !only || only.has(id);
  const versions = toolVersions(opts.installPeers, log);
  log(
    `postgres: ${versions.postgres}; pg_dump: ${versions.pg_dump} (${versions.pg_dump_path}); zstd ${versions.zstd ?? '—'}; lz4 ${versions.lz4 ?? '—'}; ` +
      `borgmatic ${versions.borgmatic ?? '—'}; ${versions.borg ?? 'borg —'}; ${versions.restic ?? 'restic —'}; ${versions.pgbackrest ?? 'pgBackRest —'}`,
  );
  const sizes = [
    ...(opts.smallMiB > 0 ? [{ key: 'small', label: `~${opts.smallMiB} MiB`, bytes: opts.smallMiB * 2 ** 20, full: false }] : []),
    { key: 'large', label: opts.largeMiB >= 1024 ? `≥ ${+(opts.largeMiB / 1024).toFixed(2)} GiB` : `~${opts.largeMiB} MiB`, bytes: opts.largeMiB * 2 ** 20, full: true },
  ];
  const rows = [];
  const generation = {};
  const profiles = [];
  let study;

  for (const size of sizes) {
    log(`postgres, ${size.label}: starting a private PostgreSQL server…`);
    const server = await startPostgres({ settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
    try {
      const work = path.join(tempDir, `pg-${size.key}`);
      mkdirSync(work, { recursive: true });
      log(`postgres, ${size.label}: generating database "${DB}" (six tables) on port ${server.port}…`);
      const gen = await generateShop(server, DB, size.bytes, { log });
      generation[size.key] = gen;
      log(`postgres, ${size.label}: generated ${mib(gen.bytes)} in ${fmtMs(gen.ms)} (${Object.entries(gen.rows).map(([k, v]) => `${v.toLocaleString('en')} ${k}`).join(', ')})`);
      const clusterBytes = Number(await server.psql('SELECT sum(pg_database_size(datname)) FROM pg_database'));
      const base = { size: size.key, db_bytes: gen.bytes };
      const tools = []; // { row, runner }
      const add = (row, o) => {
        if (!wanted(row.id)) return;
        const runner = toolRunner(row.label, { warmup: opts.warmup, log, ...o });
        tools.push({ row: { ...base, ...row }, runner });
      };

      if (size.full && !only) {
        log(`postgres, ${size.label}: compression study (one uncompressed dump, each method on one core)…`);
        try {
          study = await compressionStudy(server, work, { runs: 2, log });
        } catch (err) {
          study = { failed: err.message };
        }
      }

      // ---- raw pg_dump at each setting ---------------------------------------------------
      const rawTool = (r) => {
        const out = path.join(work, `${r.id}.out`);
        add(
          { id: r.id, tool: 'raw', label: `raw ${r.settings}`, name: `raw \`${r.command}\``, settings: r.settings, equal_of: r.equalOf },
          {
            step: async () => {
              rmSync(out, { recursive: true, force: true });
              return {
                cmd: 'bash',
                args: ['-c', `set -o pipefail; ${r.shell(out)}`],
                env: server.env(DB),
                cwd: work,
                after: async () => {
                  const bytes = r.out === 'dir' ? duBytes(out) : statSync(out).size;
                  rmSync(out, { recursive: true, force: true });
                  return { outputBytes: bytes };
                },
              };
            },
          },
        );
      };
      // ---- bkp ---------------------------------------------------------------------------
      const bkpDir = path.join(work, 'bkp');
      mkdirSync(bkpDir, { recursive: true });
      const policy = path.join(bkpDir, 'bkp.yaml');
      writeFileSync(policy, bkpPolicy());
      const bkpEnv = { ...process.env, PG_PORT: String(server.port), PG_PASSWORD: server.password };
      const bkpTool = (v) =>
        add(
          {
            id: v.id,
            tool: 'bkp',
            label: v.jobs ? `bkp jobs ${v.jobs}, ${v.compression}` : 'bkp, default settings',
            name: v.jobs ? `**bkp** jobs ${v.jobs}, ${v.compression}` : '**bkp**, defaults',
            settings: v.jobs ? `${v.jobs === 1 ? 'custom' : 'directory -j2'}, ${v.compression}` : 'defaults',
            equal_of: VARIANTS.find((x) => x.id === v.id) ? RAW.find((r) => r.equalOf === v.id)?.id : undefined,
          },
          {
            step: async () => {
              rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
              const rssFile = path.join(bkpDir, 'rss');
              rmSync(rssFile, { force: true });
              return {
                cmd: process.execPath,
                args: [WRAPPER, 'backup', v.target, '-c', policy],
                env: { ...bkpEnv, BKP_BENCH_RSS_FILE: rssFile, BKP_BENCH_CLI: path.join(root, 'dist/cli/main.js') },
                cwd: root,
                after: async () => {
                  const unitDir = path.join(bkpDir, 'backups', v.target, DB);
                  const files = readdirSync(unitDir);
                  const manifest = files.find((f) => f.endsWith('.manifest.json'));
                  if (!manifest) throw new Error(`no manifest in ${unitDir}`);
                  const m = JSON.parse(readFileSync(path.join(unitDir, manifest), 'utf8'));
                  const bytes = statSync(path.join(unitDir, m.artifact)).size;
                  const leftovers = existsSync(path.join(bkpDir, 'tmp')) ? readdirSync(path.join(bkpDir, 'tmp')) : [];
                  if (leftovers.length) throw new Error(`temp_dir not empty after the backup: ${leftovers.join(', ')}`);
                  rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
                  return { outputBytes: bytes, selfRssKb: Number(readFileSync(rssFile, 'utf8').trim()), facts: m.facts };
                },
              };
            },
          },
        );

      if (size.full) {
        // Each bkp variant next to the raw pg_dump at its settings, so that they run back to back.
        for (const r of RAW) {
          const v = VARIANTS.find((x) => x.id === r.equalOf);
          rawTool(r);
          if (v) bkpTool(v);
        }
        bkpTool(DEFAULT_VARIANT);
      } else {
        rawTool(RAW[0]);
        bkpTool(DEFAULT_VARIANT);
      }

      if (size.full || opts.peersOnSmall) {
        // ---- borgmatic + borg ------------------------------------------------------------
        if (versions.borgmatic_missing) {
          if (wanted('borgmatic')) rows.push({ ...base, id: 'borgmatic', tool: 'borgmatic', name: 'borgmatic + borg, new repository', failed: `not run: ${versions.borgmatic_missing}` });
        } else {
          const benv = { ...pgEnv(), BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes', BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };
          const fresh = (bdir) => {
            rmSync(bdir, { recursive: true, force: true });
            mkdirSync(bdir, { recursive: true });
            const conf = path.join(bdir, 'config.yaml');
            writeFileSync(conf, borgmaticConfig(bdir, server), { mode: 0o600 });
            const init = sh('borgmatic', ['-c', conf, 'init', '--encryption', 'none'], { env: benv });
            if (!init.ok) throw new Error(`borgmatic init failed: ${init.err || init.out}`);
            return conf;
          };
          const freshDir = path.join(work, 'borgmatic-new');
          add(
            { id: 'borgmatic', tool: 'borgmatic', label: 'borgmatic (new repository)', name: 'borgmatic + borg, new repository', settings: 'pg_dump -Fc (gzip 6), borg lz4', command: 'borgmatic -c CONFIG create' },
            {
              step: async () => {
                const conf = fresh(freshDir);
                return {
                  cmd: 'borgmatic',
                  args: ['-c', conf, 'create'],
                  env: benv,
                  cwd: freshDir,
                  after: async () => {
                    const bytes = duBytes(path.join(freshDir, 'repo'));
                    rmSync(freshDir, { recursive: true, force: true });
                    return { outputBytes: bytes };
                  },
                };
              },
            },
          );
          if (opts.borgRepeat) {
            const againDir = path.join(work, 'borgmatic-again');
            add(
              { id: 'borgmatic-repeat', tool: 'borgmatic-repeat', label: 'borgmatic (2nd archive)', name: 'borgmatic + borg, 2nd archive (dedup)', settings: 'same, unchanged database', command: 'borgmatic -c CONFIG create (again)' },
              {
                step: async () => {
                  const conf = fresh(againDir);
                  const first = sh('borgmatic', ['-c', conf, 'create'], { env: benv });
                  if (!first.ok) throw new Error(`the first borgmatic create failed: ${first.err}`);
                  const before = duBytes(path.join(againDir, 'repo'));
                  return {
                    cmd: 'borgmatic',
                    args: ['-c', conf, 'create'],
                    env: benv,
                    cwd: againDir,
                    after: async () => {
                      const bytes = duBytes(path.join(againDir, 'repo')) - before;
                      rmSync(againDir, { recursive: true, force: true });
                      return { outputBytes: bytes };
                    },
                  };
                },
              },
            );
          }
        }

        // ---- restic --stdin ---------------------------------------------------------------
        if (versions.restic_missing) {
          if (wanted('restic')) rows.push({ ...base, id: 'restic', tool: 'restic', name: 'restic `--stdin`, new repository', failed: `not run: ${versions.restic_missing}` });
        } else {
          const rdir = path.join(work, 'restic');
          const renv = { ...server.env(DB), RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: path.join(rdir, 'repo'), RESTIC_CACHE_DIR: path.join(rdir, 'cache') };
          add(
            { id: 'restic', tool: 'restic', label: 'restic --stdin (new repository)', name: 'restic `--stdin`, new repository', settings: 'pg_dump -Fc (gzip 6), restic zstd auto', command: 'pg_dump -Fc shop | restic backup --stdin' },
            {
              step: async () => {
                rmSync(rdir, { recursive: true, force: true });
                mkdirSync(rdir, { recursive: true });
                const init = sh('restic', ['init', '-q'], { env: renv });
                if (!init.ok) throw new Error(`restic init failed: ${init.err || init.out}`);
                return {
                  cmd: 'bash',
                  args: ['-c', `set -o pipefail; pg_dump -Fc ${DB} | restic backup -q --stdin --stdin-filename ${DB}.dump`],
                  env: renv,
                  cwd: rdir,
                  after: async () => {
                    const bytes = duBytes(path.join(rdir, 'repo'));
                    rmSync(rdir, { recursive: true, force: true });
                    return { outputBytes: bytes };
                  },
                };
              },
            },
          );
        }

        // ---- pgBackRest ------------------------------------------------------------------
        if (versions.pgbackrest_missing) {
          if (wanted('pgbackrest')) rows.push({ ...base, id: 'pgbackrest', tool: 'pgbackrest', name: 'pgBackRest full (whole cluster)', failed: `not run: ${versions.pgbackrest_missing}` });
        } else if (wanted('pgbackrest')) {
          const pdir = server.ownedDir('pgbackrest');
          for (const d of ['repo', 'log', 'lock', 'spool']) server.ownedDir(path.join('pgbackrest', d));
          const conf = path.join(pdir, 'pgbackrest.conf');
          server.writeOwnedFile(
            conf,
            [
              '[global]',
              `repo1-path=${path.join(pdir, 'repo')}`,
              'repo1-retention-full=9999',
              `log-path=${path.join(pdir, 'log')}`,
              `lock-path=${path.join(pdir, 'lock')}`,
              `spool-path=${path.join(pdir, 'spool')}`,
              'log-level-console=warn',
              'log-level-file=info',
              'start-fast=y',
              '',
              '[bench]',
              `pg1-path=${server.dataDir}`,
              `pg1-port=${server.port}`,
              `pg1-socket-path=${server.socketDir}`,
              'pg1-user=postgres',
              '',
            ].join('\n'),
          );
          const pb = (args) => asPostgres('pgbackrest', [`--config=${conf}`, '--stanza=bench', ...args]);
          let prep;
          try {
            // Before any tool runs, so every run of every tool sees the same server settings.
            log('  pgBackRest: restarting the server with archive_mode=on, archive_command=pgbackrest archive-push; stanza-create…');
            await server.restart({ archive_mode: 'on', archive_command: `pgbackrest --config=${conf} --stanza=bench archive-push %p` });
            const [c, a] = pb(['stanza-create']);
            const r = sh(c, a, { env: pgEnv(), cwd: '/' });
            if (!r.ok) throw new Error(`stanza-create failed: ${r.err || r.out}`);
          } catch (err) {
            prep = err.message;
          }
          if (prep) {
            rows.push({ ...base, db_bytes: clusterBytes, id: 'pgbackrest', tool: 'pgbackrest', name: 'pgBackRest full (whole cluster)', failed: `not run: ${lastLines(prep)}` });
          } else {
            const [c, a] = pb(['backup', '--type=full']);
            add(
              { db_bytes: clusterBytes, id: 'pgbackrest', tool: 'pgbackrest', label: 'pgbackrest full', name: 'pgBackRest `backup --type=full` (whole cluster, physical)', settings: 'gz 6, 1 process', command: 'pgbackrest --stanza=bench backup --type=full' },
              {
                step: async () => ({
                  cmd: c,
                  args: a,
                  env: pgEnv(),
                  cwd: '/',
                  after: async () => {
                    const [ic, ia] = pb(['info', '--output=json']);
                    const info = JSON.parse(execFileSync(ic, ia, { env: pgEnv(), cwd: '/', encoding: 'utf8' }));
                    const last = info[0].backup.at(-1);
                    return { outputBytes: last.info.repository.delta };
                  },
                }),
              },
            );
          }
        }
      }

      // ---- the runs: round-robin over the tools ------------------------------------------
      log(`postgres, ${size.label}: ${tools.map((t) => t.runner.label).join(', ')}: ${opts.warmup} warm-up + ${opts.runs} runs each, taking turns…`);
      for (let i = 0; i < opts.warmup + opts.runs; i++) {
        for (const t of tools) await t.runner.runOnce(i);
      }
      for (const t of tools) rows.push({ ...t.row, ...t.runner.result() });

      // ---- a profile of bkp's default when it misses the equal-settings goal ---------------
      const def = rows.find((r) => r.id === DEFAULT_VARIANT.id && r.size === size.key && !r.failed);
      if (def && size.full && (opts.profile === 'always' || opts.profile === 'auto')) {
        const eq = equalRawFor(def, rows);
        if (opts.profile === 'always' || (eq && def.median_ms / eq.median_ms > GOAL_RATIO)) {
          log(`  profiling bkp backup (node --cpu-prof)…`);
          const saved = { PG_PORT: process.env.PG_PORT, PG_PASSWORD: process.env.PG_PASSWORD };
          Object.assign(process.env, { PG_PORT: String(server.port), PG_PASSWORD: server.password });
          try {
            rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
            const p = profileCli(root, ['backup', DEFAULT_VARIANT.target, '-c', policy], { intervalUs: 1000 });
            profiles.push({ measurement: `bkp backup (defaults), ${size.label}`, ...p });
          } catch (err) {
            profiles.push({ measurement: `bkp backup (defaults), ${size.label}`, error: err.message });
          } finally {
            for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
            else process.env[k] = v;
            rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
          }
        }
      }
    } finally {
      await server.stop().catch((err) => log(`could not stop the server: ${err.message}`));
    }
  }

  // ---- goals and the tables ----------------------------------------------------------------
  const baselineOf = (k) => rows.find((r) => r.id === 'raw-fc' && r.size === k && !r.failed);
  for (const r of rows) {
    if (r.failed) continue;
    const baseline = baselineOf(r.size);
    if (baseline) {
      r.ratio = r.median_ms / baseline.median_ms;
      r.size_vs_gzip6 = r.output_bytes / baseline.output_bytes;
    }
    r.mib_per_s = r.db_bytes / 2 ** 20 / (r.median_ms / 1000);
    const eq = equalRawFor(r, rows);
    if (eq) {
      r.equal_raw = eq.id;
      r.ratio_equal = r.median_ms / eq.median_ms;
    }
  }
  const defSmall = rows.find((r) => r.id === DEFAULT_VARIANT.id && r.size === 'small' && !r.failed);
  const defLarge = rows.find((r) => r.id === DEFAULT_VARIANT.id && r.size === 'large' && !r.failed);
  const flat = defSmall && defLarge ? defLarge.rss.self_peak_kb <= defSmall.rss.self_peak_kb * FLAT_TOLERANCE : undefined;
  for (const r of rows.filter((x) => x.tool === 'bkp' && !x.failed)) {
    r.goals = {
      rss_ok: r.rss.self_peak_kb * 1024 <= GOAL_RSS_BYTES,
      ...(r.ratio_equal !== undefined ? { equal_ok: r.ratio_equal <= GOAL_RATIO } : {}),
      ...(r.size === 'large' ? { speed_ok: r.mib_per_s >= GOAL_MIBS } : {}),
      ...(r.size === 'large' && r.size_vs_gzip6 !== undefined ? { size_ok: r.size_vs_gzip6 <= GOAL_SIZE } : {}),
    };
    r.met = Object.values(r.goals).every(Boolean);
  }

  const lines = [];
  const p = (l = '') => lines.push(l);
  const bare = (v, prefix) => v?.replace(prefix, '');
  p(
    `PostgreSQL ${bare(versions.postgres, /^postgres \(PostgreSQL\) /)} (a private server the bench starts: fsync, synchronous_commit and full_page_writes off), ` +
      `pg_dump ${bare(versions.pg_dump, /^pg_dump \(PostgreSQL\) /)} (\`${versions.pg_dump_path}\`, used by the raw rows, bkp, borgmatic and restic alike, over TCP with a password); ` +
      `zstd ${versions.zstd ?? 'not installed'}, lz4 ${versions.lz4 ?? 'not installed'}; ` +
      `borgmatic ${versions.borgmatic ?? 'not installed'}${versions.borgmatic_deb ? ` (Debian ${versions.borgmatic_deb})` : ''}, ` +
      `${versions.borg ?? 'borg not installed'}${versions.borg_deb ? ` (Debian ${versions.borg_deb})` : ''}, ` +
      `${versions.restic ?? 'restic not installed'}${versions.restic_deb ? ` (Debian ${versions.restic_deb})` : ''}, ` +
      `${versions.pgbackrest ?? 'pgBackRest not installed'}${versions.pgbackrest_deb ? ` (Debian ${versions.pgbackrest_deb})` : ''}.`,
  );
  for (const s of sizes) {
    const g = generation[s.key];
    if (g) {
      const tables = Object.entries(g.table_bytes ?? {}).map(([k, v]) => `${k} ${mib(v)}`).join(', ');
      p(`Database ${s.label}: ${mib(g.bytes)} by pg_database_size, six tables (${tables}; ${Object.entries(g.rows).map(([k, v]) => `${v.toLocaleString('en')} ${k}`).join(', ')}), generated in ${fmtMs(g.ms)}.`);
    }
  }
  if (study?.rows) {
    p();
    p(`Compression study: one uncompressed \`pg_dump -Fd\` of the large database, tarred (${mib(study.input_bytes)}), compressed by each candidate on one core (best of 2):`);
    p();
    p('| method | output | size vs gzip-6 | CPU | MiB/s per core |');
    p('|---|---:|---:|---:|---:|');
    for (const r of study.rows) p(`| ${r.method} ${r.level} | ${mib(r.bytes)} | ${r.size_vs_gzip6.toFixed(3)}× | ${r.cpu_s.toFixed(1)} s | ${r.mib_per_cpu_s.toFixed(0)} |`);
    p();
    p(`Fastest within ${GOAL_SIZE.toFixed(2)}× of gzip-6's size: **${study.pick ? `${study.pick.method} ${study.pick.level}` : 'none'}** (bkp's default is zstd 1).`);
  } else if (study?.failed) {
    p(`Compression study failed: ${study.failed}`);
  }
  p();
  p(
    `Wall: median of ${opts.runs} runs after ${opts.warmup} warm-up, the tools of a size taking turns; page cache warm, \`sync\` before each run, outputs removed between runs (untimed). ` +
      `MiB/s: pg_database_size over wall. CPU: user + system time of the tool's whole process tree (GNU time; the server's backends not included). ` +
      `"vs raw -Fc": wall against \`pg_dump -Fc\` (gzip 6); "same settings": against the raw row at the bkp row's settings; size against \`pg_dump -Fc\`'s output (gzip-6).`,
  );
  p();
  p('| tool | settings | DB | wall (median) | MiB/s | vs raw -Fc | vs raw, same settings | CPU, tree | output (vs gzip-6) | peak RSS | temp disk peak | goals |');
  p('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|');
  for (const r of rows) {
    const dbCell = r.tool === 'pgbackrest' ? `${mib(r.db_bytes)} (cluster)` : mib(r.db_bytes);
    if (r.failed) {
      p(`| ${r.name} | ${r.settings ?? ''} | ${dbCell} | ${r.failed.startsWith('not run') ? r.failed : `failed: ${r.failed}`} | — | — | — | — | — | — | — | — |`);
      continue;
    }
    let rss;
    if (r.tool === 'bkp') rss = `node ${fmtKb(r.rss.self_peak_kb)}; ${commandsCell(r.rss.by_command_kb, ['node'])}`;
    else if (r.tool === 'raw') rss = commandsCell(r.rss.by_command_kb, ['bash']) || `pg_dump ${fmtKb(r.rss.largest_process_kb)}`;
    else rss = `${commandsCell(r.rss.by_command_kb, ['bash'])}; tree ≤ ${fmtKb(r.rss.tree_sum_sampled_kb)}`;
    let goal = r.id === 'raw-fc' ? 'baseline' : '—';
    if (r.tool === 'bkp') {
      const g = r.goals;
      const parts = [];
      if (g.speed_ok !== undefined) parts.push(`≥ ${GOAL_MIBS} MiB/s: ${g.speed_ok ? 'yes' : '**no**'}`);
      if (g.size_ok !== undefined) parts.push(`size ≤ ${GOAL_SIZE.toFixed(2)}×: ${g.size_ok ? 'yes' : '**no**'}`);
      if (g.equal_ok !== undefined) parts.push(`≤ ${GOAL_RATIO.toFixed(2)}× same settings: ${g.equal_ok ? 'yes' : '**no**'}`);
      parts.push(`RSS ≤ 120 MB: ${g.rss_ok ? 'yes' : '**no**'}`);
      if (r.id === DEFAULT_VARIANT.id && r.size === 'large' && flat !== undefined) parts.push(`flat vs ${defSmall ? mib(defSmall.db_bytes) : 'small'}: ${flat ? 'yes' : '**no**'}`);
      goal = parts.join('; ');
    }
    const samples = r.samples_ms.map((x) => (x / 1000).toFixed(2)).join(' / ');
    const settings = r.id === DEFAULT_VARIANT.id && r.facts ? `defaults: ${r.facts.format === 'directory' ? `directory -j${r.facts.jobs}` : 'custom'}, ${r.facts.compression} ${r.facts.compression_level ?? ''}`.trim() : (r.settings ?? '');
    const temp = r.facts?.temp_peak_bytes !== undefined ? mib(r.facts.temp_peak_bytes) : '—';
    p(
      `| ${r.name} | ${settings} | ${dbCell} | ${fmtMs(r.median_ms)} (${samples} s) | ${r.mib_per_s.toFixed(0)} | ${r.ratio !== undefined ? `${r.ratio.toFixed(2)}×` : '—'} | ` +
        `${r.ratio_equal !== undefined ? `${r.ratio_equal.toFixed(3)}× (${r.equal_raw})` : '—'} | ${r.median_cpu_s !== undefined ? `${r.median_cpu_s.toFixed(1)} s` : '—'} | ` +
        `${mib(r.output_bytes)}${r.size_vs_gzip6 !== undefined ? ` (${r.size_vs_gzip6.toFixed(2)}×)` : ''} | ${rss} | ${temp} | ${goal} |`,
    );
  }
  p();
  p(
    'Peak RSS: bkp\'s own node process (process.resourceUsage().maxRSS) with its children apart; for the others each process\'s VmHWM from /proc per command name ' +
      'and "tree", the largest sum of the tree\'s RSS seen at one 200 ms sample. Temp disk peak: the most bkp\'s temporary folder held (the manifest\'s temp_peak_bytes). ' +
      'borgmatic: repository `encryption none`, borg\'s default compression (lz4) on top of pg_dump\'s custom format (gzip 6); the 2nd-archive row backs up the unchanged database again into the same repository, where borg stores only new chunks. ' +
      'restic: `pg_dump -Fc | restic backup --stdin` into a new repository (format 2, restic\'s default zstd "auto" on top of gzip 6). ' +
      'pgBackRest copies the whole cluster (physical: every database\'s files plus the WAL of the backup, gz level 6, 1 process, start-fast), so its size column is the cluster\'s; ' +
      'its output is the backup\'s size in the repository.',
  );
  for (const pr of profiles) {
    if (pr.error) p(`\nProfile of ${pr.measurement} failed: ${pr.error}`);
    else printProfile(pr.measurement, pr, (l = '') => p(l));
  }
  return {
    lines,
    result: {
      versions,
      generation,
      study,
      goals: { ratio: GOAL_RATIO, rss_bytes: GOAL_RSS_BYTES, mib_per_s: GOAL_MIBS, size_vs_gzip6: GOAL_SIZE, flat_tolerance: FLAT_TOLERANCE, flat },
      runs: opts.runs,
      warmup: opts.warmup,
      rows: rows.map((r) => ({ ...r, name: r.name.replace(/\*|`/g, '') })),
      profiles,
    },
  };
}

/** The raw row run at a bkp row's settings (for the defaults: the variant they resolved to). */
function equalRawFor(r, rows) {
  if (r.tool !== 'bkp') return undefined;
  let id = r.equal_of;
  if (!id && r.facts) id = RAW.find((x) => x.equalOf === `bkp-j${r.facts.jobs === 1 ? 1 : 2}-${r.facts.compression}` && (r.facts.jobs <= 2))?.id;
  return rows.find((x) => x.id === id && x.size === r.size && !x.failed);
}
