// The PostgreSQL section of `npm run bench` (issue 3): bkp's `postgres` engine against raw
// `pg_dump -Fc -f FILE DB`, borgmatic + borg (its postgresql_databases hook) and pgBackRest, on a
// private PostgreSQL server holding a generated database (bench/lib/pg-data.mjs).
//
// For each size (~100 MiB and >= 1 GiB by pg_database_size): a fresh server of its own
// (bench/lib/postgres.mjs; fsync off), the database generated (timed), then one warm-up run and N
// timed runs of each tool (median reported), the tools taking turns (raw, bkp, borgmatic,
// pgBackRest, raw, bkp…) so that the load of a shared machine falls on all of them alike; page
// cache warm, `sync` before every run so no run pays for the previous one's write-back, outputs
// removed between runs (untimed). Besides wall time, the CPU time (user + system) of each tool's
// whole process tree, which the load of other work on the machine disturbs less.
//
//   raw        pg_dump -Fc -f FILE shop                           (the baseline, ratio 1.00)
//   bkp        node bin/bkp backup shop -c POLICY                 (engine postgres, local storage)
//   borgmatic  borgmatic -c CONFIG create, into a repository made just before by `borgmatic init
//              --encryption none` (untimed); then a second `create` into the same repository,
//              which borg deduplicates (reported as its own row)
//   pgBackRest pgbackrest --stanza=bench backup --type=full       (the whole cluster, physical)
//
// The three logical tools run the same pg_dump (the first on PATH, as bkp picks it) over TCP on
// 127.0.0.1 with a password. pgBackRest reads the data folder and talks to the server through its
// unix socket as the postgres OS user; the bench restarts the server with archive_mode=on and
// archive_command='pgbackrest … archive-push %p' for it.
//
// Peak RSS: bkp's node process reports its own high-water mark (process.resourceUsage().maxRSS,
// through bench/lib/rss-wrapper.mjs, which runs the CLI as bin/bkp does); every process of every
// tree is also followed through /proc (VmHWM per command name) and GNU time gives the largest
// process of the tree. A peer that is not installed or fails gets "not run: <reason>", never a number.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDatabase } from './pg-data.mjs';
import { AS_ROOT, asPostgres, findPgBinDir, pgEnv, startPostgres } from './postgres.mjs';
import { runMeasured } from './proc.mjs';
import { printProfile, profileCli } from './profile.mjs';
import { fmtKb, fmtMs, median } from './stats.mjs';

const WRAPPER = fileURLToPath(new URL('./rss-wrapper.mjs', import.meta.url));
const DB = 'shop';
export const GOAL_RATIO = 1.05;
export const GOAL_RSS_BYTES = 120e6; // "≤ 120 MB"
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
  const missing = ['borgmatic', 'borg', 'pgbackrest'].filter((b) => !sh('which', [b]).ok);
  if (missing.length && installPeers) {
    if (!AS_ROOT) log('--install-peers needs root (apt-get); not installing');
    else {
      log(`installing ${missing.join(', ')} with apt-get (Debian packages borgmatic borgbackup pgbackrest)…`);
      sh('apt-get', ['install', '-y', '-q', 'borgmatic', 'borgbackup', 'pgbackrest'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
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

function bkpPolicy() {
  return `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly: { cron: "0 23 * * *", retention: { keep_daily: 7, keep_on_demand: 100 } }
targets:
  ${DB}:
    engine: postgres
    connection: { host: 127.0.0.1, port: "\${env:PG_PORT}", user: postgres, password: "\${env:PG_PASSWORD}" }
    databases: [${DB}]
    schedule: nightly
`;
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
 * The whole section. opts: { root, tempDir, log, runs, warmup, smallMiB, largeMiB, installPeers,
 * borgRepeat, profile: 'auto' | 'always' | 'never' }.
 * Returns { result (JSON), lines (Markdown) }.
 */
export async function runPostgresBench(opts) {
  const { root, tempDir, log } = opts;
  const versions = toolVersions(opts.installPeers, log);
  log(`postgres: ${versions.postgres}; pg_dump: ${versions.pg_dump} (${versions.pg_dump_path}); borgmatic ${versions.borgmatic ?? '—'}; ${versions.borg ?? 'borg —'}; ${versions.pgbackrest ?? 'pgBackRest —'}`);
  const sizes = [
    { key: 'small', label: `~${opts.smallMiB} MiB`, bytes: opts.smallMiB * 2 ** 20, peers: opts.peersOnSmall === true },
    { key: 'large', label: opts.largeMiB >= 1024 ? `≥ ${+(opts.largeMiB / 1024).toFixed(2)} GiB` : `~${opts.largeMiB} MiB`, bytes: opts.largeMiB * 2 ** 20, peers: true },
  ];
  const rows = [];
  const generation = {};
  const profiles = [];
  const bench = (label, o) => measureTool(label, { warmup: opts.warmup, runs: opts.runs, log, ...o });

  for (const size of sizes) {
    log(`postgres, ${size.label}: starting a private PostgreSQL server…`);
    const server = await startPostgres({ settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
    try {
      const work = path.join(tempDir, `pg-${size.key}`);
      mkdirSync(work, { recursive: true });
      log(`postgres, ${size.label}: generating database "${DB}" on port ${server.port}…`);
      const gen = await generateDatabase(server, DB, size.bytes, { log });
      generation[size.key] = gen;
      log(`postgres, ${size.label}: generated ${mib(gen.bytes)} in ${fmtMs(gen.ms)} (${Object.entries(gen.rows).map(([k, v]) => `${v.toLocaleString('en')} ${k}`).join(', ')})`);
      const clusterBytes = Number(await server.psql('SELECT sum(pg_database_size(datname)) FROM pg_database'));
      const base = { size: size.key, db_bytes: gen.bytes };
      const tools = []; // { row, runner }
      const add = (row, o) => {
        const runner = toolRunner(row.label, { warmup: opts.warmup, log, ...o });
        tools.push({ row: { ...base, ...row }, runner });
      };

      // ---- raw pg_dump -------------------------------------------------------------------
      const dumpFile = path.join(work, 'raw.dump');
      add(
        { tool: 'raw', label: 'raw pg_dump', name: 'raw `pg_dump -Fc -f FILE`', command: 'pg_dump -Fc -f FILE shop' },
        {
          step: async () => {
            rmSync(dumpFile, { force: true });
            return {
              cmd: 'pg_dump',
              args: ['-Fc', '-f', dumpFile, DB],
              env: server.env(DB),
              cwd: work,
              after: async () => {
                const size = statSync(dumpFile).size;
                rmSync(dumpFile, { force: true });
                return { outputBytes: size };
              },
            };
          },
        },
      );

      // ---- bkp ---------------------------------------------------------------------------
      const bkpDir = path.join(work, 'bkp');
      mkdirSync(bkpDir, { recursive: true });
      const policy = path.join(bkpDir, 'bkp.yaml');
      writeFileSync(policy, bkpPolicy());
      const bkpEnv = { ...process.env, PG_PORT: String(server.port), PG_PASSWORD: server.password };
      add(
        { tool: 'bkp', label: 'bkp backup', name: '**bkp** `bkp backup`', command: 'node bin/bkp backup shop -c POLICY' },
        {
          step: async () => {
            rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
            const rssFile = path.join(bkpDir, 'rss');
            rmSync(rssFile, { force: true });
            return {
              cmd: process.execPath,
              args: [WRAPPER, 'backup', DB, '-c', policy],
              env: { ...bkpEnv, BKP_BENCH_RSS_FILE: rssFile, BKP_BENCH_CLI: path.join(root, 'dist/cli/main.js') },
              cwd: root,
              after: async () => {
                const unitDir = path.join(bkpDir, 'backups', DB, DB);
                const artifact = readdirSync(unitDir).find((f) => f.endsWith('.dump'));
                if (!artifact) throw new Error(`no .dump artifact in ${unitDir}`);
                if (!readdirSync(unitDir).some((f) => f.endsWith('.manifest.json'))) throw new Error(`no manifest in ${unitDir}`);
                const bytes = statSync(path.join(unitDir, artifact)).size;
                rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
                return { outputBytes: bytes, selfRssKb: Number(readFileSync(rssFile, 'utf8').trim()) };
              },
            };
          },
        },
      );

      if (size.peers) {
        // ---- borgmatic + borg ------------------------------------------------------------
        if (versions.borgmatic_missing) {
          rows.push({ ...base, tool: 'borgmatic', name: 'borgmatic + borg, new repository', failed: `not run: ${versions.borgmatic_missing}` });
        } else {
          const benv = { ...pgEnv(), BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes', BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };
          const borgDirs = [];
          const fresh = (bdir) => {
            borgDirs.push(bdir);
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
            { tool: 'borgmatic', label: 'borgmatic (new repository)', name: 'borgmatic + borg, new repository', command: 'borgmatic -c CONFIG create' },
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
              { tool: 'borgmatic-repeat', label: 'borgmatic (2nd archive)', name: 'borgmatic + borg, 2nd archive (dedup)', command: 'borgmatic -c CONFIG create (again)' },
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

        // ---- pgBackRest ------------------------------------------------------------------
        if (versions.pgbackrest_missing) {
          rows.push({ ...base, tool: 'pgbackrest', name: 'pgBackRest full (whole cluster)', failed: `not run: ${versions.pgbackrest_missing}` });
        } else {
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
            rows.push({ ...base, db_bytes: clusterBytes, tool: 'pgbackrest', name: 'pgBackRest full (whole cluster)', failed: `not run: ${lastLines(prep)}` });
          } else {
            const [c, a] = pb(['backup', '--type=full']);
            add(
              { db_bytes: clusterBytes, tool: 'pgbackrest', label: 'pgbackrest full', name: 'pgBackRest full (whole cluster)', command: 'pgbackrest --stanza=bench backup --type=full' },
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

      // ---- a profile of bkp when it misses a goal ----------------------------------------
      const bkpRow = rows.find((r) => r.tool === 'bkp' && r.size === size.key);
      const rawRow = rows.find((r) => r.tool === 'raw' && r.size === size.key);
      const ratioMissed = !bkpRow.failed && !rawRow.failed && bkpRow.median_ms / rawRow.median_ms > GOAL_RATIO;
      const rssMissed = !bkpRow.failed && bkpRow.rss.self_peak_kb * 1024 > GOAL_RSS_BYTES;
      if (opts.profile === 'always' || (opts.profile === 'auto' && size.key === 'large' && (ratioMissed || rssMissed))) {
        log(`  profiling bkp backup (node --cpu-prof)…`);
        const saved = { PG_PORT: process.env.PG_PORT, PG_PASSWORD: process.env.PG_PASSWORD };
        Object.assign(process.env, { PG_PORT: String(server.port), PG_PASSWORD: server.password });
        try {
          rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
          const p = profileCli(root, ['backup', DB, '-c', policy], { intervalUs: 1000 });
          profiles.push({ measurement: `bkp backup, ${size.label}`, ...p });
        } catch (err) {
          profiles.push({ measurement: `bkp backup, ${size.label}`, error: err.message });
        } finally {
          for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
          else process.env[k] = v;
          rmSync(path.join(bkpDir, 'backups'), { recursive: true, force: true });
        }
      }
    } finally {
      await server.stop().catch((err) => log(`could not stop the server: ${err.message}`));
    }
  }

  // ---- goals and the table ---------------------------------------------------------------
  const rawOf = (k) => rows.find((r) => r.tool === 'raw' && r.size === k && !r.failed);
  for (const r of rows) {
    const raw = rawOf(r.size);
    if (!r.failed && raw) r.ratio = r.median_ms / raw.median_ms;
  }
  const bkpSmall = rows.find((r) => r.tool === 'bkp' && r.size === 'small' && !r.failed);
  const bkpLarge = rows.find((r) => r.tool === 'bkp' && r.size === 'large' && !r.failed);
  const flat = bkpSmall && bkpLarge ? bkpLarge.rss.self_peak_kb <= bkpSmall.rss.self_peak_kb * FLAT_TOLERANCE : undefined;
  for (const r of rows.filter((x) => x.tool === 'bkp')) {
    if (r.failed) continue;
    const rssOk = r.rss.self_peak_kb * 1024 <= GOAL_RSS_BYTES;
    r.goals = { rss_ok: rssOk, flat };
    if (r.size === 'large') r.goals.ratio_ok = r.ratio <= GOAL_RATIO;
    r.met = rssOk && flat !== false && (r.size !== 'large' || r.goals.ratio_ok);
  }

  const lines = [];
  const p = (l = '') => lines.push(l);
  p(
    `PostgreSQL ${versions.postgres?.replace(/^postgres \(PostgreSQL\) /, '')} (a private server the bench starts: fsync, synchronous_commit and full_page_writes off), ` +
      `pg_dump ${versions.pg_dump?.replace(/^pg_dump \(PostgreSQL\) /, '')} (\`${versions.pg_dump_path}\`, used by raw, bkp and borgmatic alike, over TCP with a password); ` +
      `borgmatic ${versions.borgmatic ?? 'not installed'}${versions.borgmatic_deb ? ` (Debian ${versions.borgmatic_deb})` : ''}, ` +
      `${versions.borg ?? 'borg not installed'}${versions.borg_deb ? ` (Debian ${versions.borg_deb})` : ''}, ` +
      `${versions.pgbackrest ?? 'pgBackRest not installed'}${versions.pgbackrest_deb ? ` (Debian ${versions.pgbackrest_deb})` : ''}.`,
  );
  for (const s of sizes) {
    const g = generation[s.key];
    if (g) p(`Database ${s.label}: ${mib(g.bytes)} by pg_database_size (${Object.entries(g.rows).map(([k, v]) => `${v.toLocaleString('en')} ${k}`).join(', ')}), generated in ${fmtMs(g.ms)}.`);
  }
  p(
    `Wall: median of ${opts.runs} runs after ${opts.warmup} warm-up, the tools of a size taking turns (raw, bkp, borgmatic, pgBackRest, raw, bkp…); page cache warm, ` +
      `\`sync\` before each run, outputs removed between runs (untimed). CPU: user + system time of the tool's whole process tree (GNU time; the server's backend not included).`,
  );
  p();
  p('| tool | DB size | wall (median) | ratio to raw pg_dump | CPU, whole tree (median) | output size | peak RSS | goal / met |');
  p('|---|---:|---:|---:|---:|---:|---|---|');
  for (const r of rows) {
    const dbCell = r.tool === 'pgbackrest' ? `${mib(r.db_bytes)} (cluster)` : mib(r.db_bytes);
    if (r.failed) {
      p(`| ${r.name} | ${dbCell} | ${r.failed.startsWith('not run') ? r.failed : `failed: ${r.failed}`} | — | — | — | — | — |`);
      continue;
    }
    let rss;
    if (r.tool === 'bkp') rss = `node ${fmtKb(r.rss.self_peak_kb)} (pg_dump ${fmtKb(r.rss.by_command_kb.pg_dump ?? NaN)})`;
    else if (r.tool === 'raw') rss = `pg_dump ${fmtKb(r.rss.largest_process_kb ?? r.rss.by_command_kb.pg_dump)}`;
    else rss = `${commandsCell(r.rss.by_command_kb)}; tree ≤ ${fmtKb(r.rss.tree_sum_sampled_kb)}`;
    let goal = '—';
    if (r.tool === 'raw') goal = 'baseline';
    if (r.tool === 'bkp') {
      const parts = [];
      if (r.size === 'large') parts.push(`≤ ${GOAL_RATIO.toFixed(2)}×: ${r.goals.ratio_ok ? 'yes' : '**no**'}`);
      parts.push(`RSS ≤ 120 MB: ${r.goals.rss_ok ? 'yes' : '**no**'}`);
      if (r.size === 'large' && flat !== undefined) parts.push(`flat vs ${bkpSmall ? mib(bkpSmall.db_bytes) : 'small'}: ${flat ? 'yes' : '**no**'}`);
      goal = parts.join('; ');
    }
    const samples = r.samples_ms.map((x) => (x / 1000).toFixed(2)).join(' / ');
    const cpuCell = r.median_cpu_s !== undefined ? `${r.median_cpu_s.toFixed(1)} s` : '—';
    p(`| ${r.name} | ${dbCell} | ${fmtMs(r.median_ms)} (${samples} s) | ${r.ratio !== undefined ? `${r.ratio.toFixed(3)}×` : '—'} | ${cpuCell} | ${mib(r.output_bytes)} | ${rss} | ${goal} |`);
  }
  p();
  p(
    'Peak RSS: bkp\'s own node process (process.resourceUsage().maxRSS) with its pg_dump child apart; for the others each process\'s VmHWM from /proc per command name ' +
      'and "tree", the largest sum of the tree\'s RSS seen at one 200 ms sample. borgmatic: repository `encryption none`, borg\'s default compression (lz4) on top of pg_dump\'s ' +
      'custom format (compressed, as for raw and bkp); the 2nd-archive row backs up the unchanged database again into the same repository, where borg stores only new chunks. ' +
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
      goals: { ratio: GOAL_RATIO, rss_bytes: GOAL_RSS_BYTES, flat_tolerance: FLAT_TOLERANCE, flat },
      runs: opts.runs,
      warmup: opts.warmup,
      rows: rows.map((r) => ({ ...r, name: r.name.replace(/\*|`/g, '') })),
      profiles,
    },
  };
}
