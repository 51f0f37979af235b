import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stopOnExit } from './exit-hook.js';

/**
 * A real PostgreSQL server of its own for one test (DESIGN §8): a fresh cluster in a temp folder,
 * listening on 127.0.0.1 on a free port with password (scram-sha-256) auth, its unix socket kept in
 * the temp folder. Every call starts a new, independent server; `stop()` stops it and removes the
 * folder (and a server a test forgot is stopped when the process exits).
 *
 * As root (CI), initdb refuses to run, so initdb, pg_ctl and postgres run as the `postgres` OS user
 * (created by the Debian package; created here with useradd when missing).
 */
export interface PgServer {
  host: '127.0.0.1';
  port: number;
  user: 'postgres';
  password: string;
  /** `postgresql://postgres:PASSWORD@127.0.0.1:PORT/DB` (DB defaults to `postgres`). */
  url(db?: string): string;
  /** The folder with initdb, pg_ctl, postgres (and pg_dump, psql… from the client package). */
  binDir: string;
  /** The temp folder holding the cluster (`DIR/data`), its socket and its log (`DIR/log`). */
  dir: string;
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'The tests start their own PostgreSQL server. Install it with `bash scripts/ensure-test-deps.sh` ' +
  '(or, as root: apt-get install postgresql-15 postgresql-client-15), or point BKP_TEST_PG_BIN at a folder holding initdb, pg_ctl and postgres.';

const SERVER_BINARIES = ['initdb', 'pg_ctl', 'postgres'];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function hasServerBinaries(dir: string): boolean {
  return SERVER_BINARIES.every((b) => isExecutable(path.join(dir, b)));
}

/** BKP_TEST_PG_BIN when set, else the highest version under /usr/lib/postgresql/*\/bin. */
export function findPgBinDir(): string {
  const override = process.env.BKP_TEST_PG_BIN;
  if (override) {
    if (hasServerBinaries(override)) return override;
    const missing = SERVER_BINARIES.filter((b) => !isExecutable(path.join(override, b)));
    throw new Error(`PostgreSQL binaries not found: BKP_TEST_PG_BIN=${override} has no ${missing.join(', ')}. ${INSTALL_HINT}`);
  }
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // no PostgreSQL at all
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const dir = path.join(root, v, 'bin');
    if (hasServerBinaries(dir)) return dir;
  }
  throw new Error(`PostgreSQL server binaries not found (looked in ${root}/*/bin for ${SERVER_BINARIES.join(', ')}). ${INSTALL_HINT}`);
}

interface OsUser {
  uid: number;
  gid: number;
}

function lookupUser(name: string): OsUser | undefined {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** The `postgres` OS user, created (as a system user) when the Debian package has not done it. */
function postgresUser(): OsUser {
  let user = lookupUser('postgres');
  if (!user) {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: 'pipe' });
    } catch (err) {
      // Another test file may have created it at the same time.
      if (!lookupUser('postgres')) throw new Error(`could not create the postgres OS user (initdb refuses to run as root): ${(err as Error).message}`);
    }
    user = lookupUser('postgres');
    if (!user) throw new Error('the postgres OS user is missing and could not be created');
  }
  return user;
}

/** Whether every folder from / down to dir can be traversed by any user. */
function traversableByAll(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (d === path.dirname(d)) return true;
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The environment for the PostgreSQL tools: no PG* variables of the caller, a C locale. */
function pgEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG') && !k.startsWith('LC_') && k !== 'LANG') env[k] = v;
  env.LANG = 'C';
  env.LC_ALL = 'C';
  return env;
}

interface Runner {
  /** [file, args] for running a PostgreSQL binary as the right OS user. */
  command(bin: string, args: string[]): [string, string[]];
}

function runner(asPostgres: boolean): Runner {
  if (!asPostgres) return { command: (bin, args) => [bin, args] };
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find(isExecutable);
  if (runuser) return { command: (bin, args) => [runuser, ['-u', 'postgres', '--', bin, ...args]] };
  return { command: (bin, args) => ['su', ['postgres', '-s', '/bin/sh', '-c', [bin, ...args].map(shellQuote).join(' ')]] };
}

function run(r: Runner, bin: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  const [file, argv] = r.command(bin, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { cwd, env: pgEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${err.message}\n${stderr}${stdout}`.trim()), { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Servers not stopped yet, stopped synchronously when the process exits. */
const running = new Map<string, { stopSync(): void }>();
/** Stops every server not stopped yet (see exit-hook.ts). */
const stopAll = () => {
  for (const s of [...running.values()]) s.stopSync();
};

export async function startPostgres(opts: { superPassword?: string } = {}): Promise<PgServer> {
  const binDir = findPgBinDir();
  const asPostgres = typeof process.getuid === 'function' && process.getuid() === 0;
  const r = runner(asPostgres);
  const owner = asPostgres ? postgresUser() : undefined;

  // As root the postgres user must reach the folder: use os.tmpdir() only if it is traversable.
  const parent = asPostgres && !traversableByAll(tmpdir()) ? '/tmp' : tmpdir();
  const dir = mkdtempSync(path.join(parent, 'bkp-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'log');
  const pwFile = path.join(dir, 'pwfile');
  const password = opts.superPassword ?? randomBytes(12).toString('hex');
  try {
    writeFileSync(pwFile, password + '\n', { mode: 0o600 });
    if (owner) {
      chmodSync(dir, 0o755);
      chownSync(dir, owner.uid, owner.gid);
      chownSync(pwFile, owner.uid, owner.gid);
    }
    await run(r, path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwFile}`, '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], dir);
    rmSync(pwFile, { force: true });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const pgCtl = path.join(binDir, 'pg_ctl');
  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    const serverOpts = [`-p ${port}`, `-k ${shellQuote(dir)}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'].join(' ');
    try {
      await run(r, pgCtl, ['-D', dataDir, '-o', serverOpts, '-l', logFile, '-w', '-t', '60', 'start'], dir);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      // A port taken between freePort() and the bind: try another one. Anything else is fatal.
      if (!/could not bind|address already in use|could not create any TCP\/IP sockets/i.test(tail(logFile, 50))) break;
    }
  }
  if (lastError !== undefined) {
    const log = tail(logFile);
    try {
      execFileSync(...r.command(pgCtl, ['-D', dataDir, 'stop', '-m', 'immediate']), { cwd: dir, env: pgEnv(), stdio: 'ignore' });
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${(lastError as Error).message}\n--- server log ---\n${log}`);
  }

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    running.delete(dir);
    try {
      execFileSync(...r.command(pgCtl, ['-D', dataDir, 'stop', '-m', 'immediate', '-w']), { cwd: '/', env: pgEnv(), stdio: 'ignore', timeout: 30_000 });
    } catch {
      // best effort
    }
    rmSync(dir, { recursive: true, force: true });
  };
  running.set(dir, { stopSync });
  stopOnExit(stopAll);

  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    binDir,
    dir,
    url: (db = 'postgres') => `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(dir);
      try {
        if (existsSync(path.join(dataDir, 'postmaster.pid'))) await run(r, pgCtl, ['-D', dataDir, 'stop', '-m', 'fast', '-w', '-t', '60'], '/');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
