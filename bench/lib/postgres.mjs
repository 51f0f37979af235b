// A private PostgreSQL server for the bench: the initdb / pg_ctl dance of
// test/helpers/postgres-server.ts, in plain JS (bench/ runs without a TypeScript step).
//
// A fresh cluster in a temp folder, listening on 127.0.0.1 on a free port with password
// (scram-sha-256) auth over TCP, and `trust` on its unix socket, which lives in the same temp folder
// (pgBackRest talks to the server through that socket as the `postgres` OS user). As root, initdb
// refuses to run, so initdb, pg_ctl, postgres (and pgBackRest) run as the `postgres` OS user.
//
// Durability is off, as in the tests: fsync=off, synchronous_commit=off, full_page_writes=off.
// That speeds up the data generation; dumping (reads) is not affected.

import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const SERVER_BINARIES = ['initdb', 'pg_ctl', 'postgres'];

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** BKP_TEST_PG_BIN when set, else the highest version under /usr/lib/postgresql/*\/bin; undefined when none. */
export function findPgBinDir() {
  const override = process.env.BKP_TEST_PG_BIN;
  if (override) return SERVER_BINARIES.every((b) => isExecutable(path.join(override, b))) ? override : undefined;
  let versions = [];
  try {
    versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // no PostgreSQL at all
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const dir = path.join('/usr/lib/postgresql', v, 'bin');
    if (SERVER_BINARIES.every((b) => isExecutable(path.join(dir, b)))) return dir;
  }
  return undefined;
}

function lookupUser(name) {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** The `postgres` OS user, created (as a system user) when the Debian package has not done it. */
export function postgresUser() {
  let user = lookupUser('postgres');
  if (!user) {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: 'pipe' });
    user = lookupUser('postgres');
    if (!user) throw new Error('the postgres OS user is missing and could not be created');
  }
  return user;
}

function traversableByAll(dir) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (d === path.dirname(d)) return true;
  }
}

export function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/** The environment for the PostgreSQL tools: no PG* variables of the caller, a C locale. */
export function pgEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG') && !k.startsWith('LC_') && k !== 'LANG') env[k] = v;
  env.LANG = 'C';
  env.LC_ALL = 'C';
  return { ...env, ...extra };
}

export const AS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

/** [file, args] running `bin args` as the postgres OS user when we are root, as ourselves otherwise. */
export function asPostgres(bin, args) {
  if (!AS_ROOT) return [bin, args];
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find(isExecutable);
  if (runuser) return [runuser, ['-u', 'postgres', '--', bin, ...args]];
  return ['su', ['postgres', '-s', '/bin/sh', '-c', [bin, ...args].map(shellQuote).join(' ')]];
}

function run(bin, args, { cwd = '/', env = pgEnv(), timeoutMs = 300_000, input } = {}) {
  const [file, argv] = asPostgres(bin, args);
  return new Promise((resolve, reject) => {
    const child = execFile(file, argv, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${err.message}\n${stderr}${stdout}`.trim()), { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tail(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

const running = new Map();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of [...running.values()]) s.stopSync();
  });
}

/** Stops every server this process started (synchronously); for signal handlers. */
export function stopAllSync() {
  for (const s of [...running.values()]) s.stopSync();
}

/** The settings every start uses (durability off, see the header). */
const BASE_SETTINGS = { listen_addresses: '127.0.0.1', fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' };

/**
 * Starts a new server. opts.settings: extra `-c name=value` settings (e.g. max_wal_size).
 * Returns { host, port, user, password, binDir, dir, dataDir, socketDir, logFile, url(db), env(db),
 *           psql(sql, db), restart(settings), stop(), stopSync(), owner }.
 */
export async function startPostgres(opts = {}) {
  const binDir = findPgBinDir();
  if (!binDir) throw new Error('PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): apt-get install postgresql-15 postgresql-client-15');
  const owner = AS_ROOT ? postgresUser() : undefined;
  const parent = opts.parent ?? (AS_ROOT && !traversableByAll(tmpdir()) ? '/tmp' : tmpdir());
  const dir = mkdtempSync(path.join(parent, 'bkp-bench-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'log');
  const pwFile = path.join(dir, 'pwfile');
  const password = randomBytes(12).toString('hex');
  try {
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (owner) {
      chmodSync(dir, 0o755);
      chownSync(dir, owner.uid, owner.gid);
      chownSync(pwFile, owner.uid, owner.gid);
    }
    await run(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth-host=scram-sha-256', '--auth-local=trust', `--pwfile=${pwFile}`, '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], { cwd: dir });
    rmSync(pwFile, { force: true });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const pgCtl = path.join(binDir, 'pg_ctl');
  let port = 0;
  let current = { ...BASE_SETTINGS, ...(opts.settings ?? {}) };
  const serverOpts = (settings) => [`-p ${port}`, `-k ${shellQuote(dir)}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${shellQuote(v)}`)].join(' ');

  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    try {
      await run(pgCtl, ['-D', dataDir, '-o', serverOpts(current), '-l', logFile, '-w', '-t', '120', 'start'], { cwd: dir });
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      if (!/could not bind|address already in use|could not create any TCP\/IP sockets/i.test(tail(logFile, 50))) break;
    }
  }
  const stopCmd = (mode) => asPostgres(pgCtl, ['-D', dataDir, 'stop', '-m', mode, '-w', '-t', '120']);
  if (lastError !== undefined) {
    const log = tail(logFile);
    try {
      execFileSync(...stopCmd('immediate'), { cwd: dir, env: pgEnv(), stdio: 'ignore' });
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${lastError.message}\n--- server log ---\n${log}`);
  }

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    running.delete(dir);
    try {
      execFileSync(...stopCmd('immediate'), { cwd: '/', env: pgEnv(), stdio: 'ignore', timeout: 60_000 });
    } catch {
      // best effort
    }
    rmSync(dir, { recursive: true, force: true });
  };
  running.set(dir, { stopSync });
  installExitHook();

  const env = (db = 'postgres') => pgEnv({ PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: password, PGDATABASE: db });
  const psqlBin = path.join(binDir, 'psql');

  const server = {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    user: 'postgres',
    password,
    binDir,
    dir,
    dataDir,
    socketDir: dir,
    logFile,
    owner,
    settings: () => ({ ...current }),
    url: (db = 'postgres') => `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    /** libpq environment for a client tool connecting over TCP with the password. */
    env,
    /** Runs SQL with psql (as ourselves, over TCP); returns the unaligned, tuples-only output. */
    async psql(sql, db = 'postgres') {
      return new Promise((resolve, reject) => {
        execFile(psqlBin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: env(db), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`psql -c ${JSON.stringify(sql.slice(0, 200))} failed: ${stderr || err.message}`));
          else resolve(stdout.trim());
        });
      });
    },
    /** psql reading a script (COPY … FROM STDIN data inline) from its stdin; returns the child. */
    psqlStdin(db) {
      return spawn(psqlBin, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { env: env(db), stdio: ['pipe', 'ignore', 'pipe'] });
    },
    /** Restarts the server with extra settings (merged over the current ones); same port. */
    async restart(settings = {}) {
      current = { ...current, ...settings };
      await run(pgCtl, ['-D', dataDir, '-o', serverOpts(current), '-l', logFile, '-w', '-t', '300', '-m', 'fast', 'restart'], { cwd: dir });
    },
    /** A folder owned by the postgres OS user inside the server's temp folder. */
    ownedDir(name) {
      const d = path.join(dir, name);
      mkdirSync(d, { recursive: true, mode: 0o750 });
      if (owner) chownSync(d, owner.uid, owner.gid);
      return d;
    },
    /** A file readable by the postgres OS user. */
    writeOwnedFile(file, text) {
      writeFileSync(file, text, { mode: 0o640 });
      if (owner) chownSync(file, owner.uid, owner.gid);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(dir);
      try {
        if (existsSync(path.join(dataDir, 'postmaster.pid'))) await run(pgCtl, ['-D', dataDir, 'stop', '-m', 'fast', '-w', '-t', '120']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    stopSync,
    tail: (n) => tail(logFile, n),
  };
  return server;
}
