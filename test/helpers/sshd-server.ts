import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { freePort } from './postgres-server.js';
import { stopOnExit } from './exit-hook.js';

/**
 * A real OpenSSH server of its own for one test (DESIGN §8): Debian's `/usr/sbin/sshd`, not the
 * system's service, with its own ed25519 host key, config, authorized key and log in a temp folder,
 * listening on 127.0.0.1 on a free port, serving SFTP with `internal-sftp`. The login user is the
 * current user (root in CI: `PermitRootLogin prohibit-password`).
 *
 * `kill()` SIGKILLs the listener and every per-connection sshd (a crash or a lost link, as seen by
 * the client) and keeps the folder; `startSshd({ reuse })` then starts a new server on the same
 * folder, keys and root (on the same port when it is still free). `stop()` terminates the server
 * and removes the folder once no server started on it is left. Servers a test forgot are killed
 * when the process exits.
 */
export interface SshdServer {
  host: '127.0.0.1';
  port: number;
  user: string;
  /** A folder on the server for a storage root (`DIR/root`, created empty). */
  root: string;
  /** Client private key (ed25519, no passphrase) whose public half is the authorized key. */
  privateKeyFile: string;
  /** `SHA256:…` of the host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** A known_hosts file with a `[127.0.0.1]:PORT ssh-ed25519 …` line for this server. */
  knownHostsFile: string;
  /** The temp folder with keys, config, `sshd.log` and `root/`. */
  dir: string;
  /** The sshd log (stderr of `sshd -D -e`), for failure messages. */
  log(): string;
  stop(): Promise<void>;
  /** SIGKILLs the server and its sessions at once; the folder stays (see `reuse`). */
  kill(): void;
}

const INSTALL_HINT =
  'The SFTP tests start their own OpenSSH server. Install it with `bash scripts/ensure-test-deps.sh` ' +
  '(or, as root: apt-get install openssh-server), or point BKP_TEST_SSHD at an sshd binary.';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** BKP_TEST_SSHD, else sshd in /usr/sbin (not on a non-root PATH), else on PATH. */
export function findSshd(): string {
  const override = process.env.BKP_TEST_SSHD;
  if (override) {
    if (isExecutable(override)) return override;
    throw new Error(`sshd not found: BKP_TEST_SSHD=${override} is not an executable file. ${INSTALL_HINT}`);
  }
  const candidates = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', ...(process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, 'sshd'))];
  const found = candidates.find(isExecutable);
  if (!found) throw new Error(`sshd not found (looked in /usr/sbin, /usr/local/sbin and PATH). ${INSTALL_HINT}`);
  return found;
}

function findSshKeygen(sshd: string): string {
  const candidates = [path.join(path.dirname(sshd), '..', 'bin', 'ssh-keygen'), '/usr/bin/ssh-keygen', ...(process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, 'ssh-keygen'))];
  const found = candidates.find(isExecutable);
  if (!found) throw new Error(`ssh-keygen not found. ${INSTALL_HINT}`);
  return found;
}

function keygen(bin: string, file: string, comment: string): void {
  execFileSync(bin, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'pipe' });
}

/** `SHA256:…` of a public key file, from `ssh-keygen -lf` ("256 SHA256:xxx comment (ED25519)"). */
export function fingerprintOf(keygenBin: string, pubFile: string): string {
  const out = execFileSync(keygenBin, ['-l', '-E', 'sha256', '-f', pubFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const fp = out.split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  return fp;
}

/** Every descendant pid of `pid` (children first-level and below), read from /proc. */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parentOf.get(ppid) ?? [];
      list.push(Number(entry));
      parentOf.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    for (const c of parentOf.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Signals sshd and its per-connection processes (they call setsid(): a process group kill misses them). */
function signalTree(pid: number, signal: NodeJS.Signals): void {
  const pids = [pid, ...descendants(pid)];
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Waits for sshd's own "Server listening on 127.0.0.1 port N." in its log (written from `offset`
 * on), so a foreign process that grabbed the port is never mistaken for our server.
 */
function waitForListening(logFile: string, offset: number, port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const line = `Server listening on 127.0.0.1 port ${port}.`;
  return new Promise((resolve, reject) => {
    const check = () => {
      let text = '';
      try {
        text = readFileSync(logFile).subarray(offset).toString('utf8');
      } catch {
        // not written yet
      }
      if (text.includes(line)) return resolve();
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`sshd exited (${child.exitCode ?? child.signalCode}) before listening`));
      if (Date.now() > deadline) return reject(new Error(`sshd did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`));
      setTimeout(check, 20);
    };
    check();
  });
}

/** Servers still running, killed synchronously when the process exits (their folders are removed then too). */
const running = new Map<ChildProcess, { killSync(): void }>();
/** How many servers started on each folder are not stopped yet (the last `stop()` removes it). */
const folderUsers = new Map<string, number>();
/** Kills every server not stopped yet and removes the folders they used (see exit-hook.ts). */
const killAll = () => {
  for (const s of [...running.values()]) s.killSync();
  for (const dir of [...folderUsers.keys()]) {
    folderUsers.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  }
};

function releaseFolder(dir: string): void {
  const n = (folderUsers.get(dir) ?? 1) - 1;
  if (n > 0) {
    folderUsers.set(dir, n);
    return;
  }
  folderUsers.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'UsePAM no',
    'UseDNS no',
    'PrintMotd no',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'MaxStartups 50',
    'LogLevel VERBOSE',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

export async function startSshd(opts: { reuse?: SshdServer } = {}): Promise<SshdServer> {
  const started = Date.now();
  const sshd = findSshd();
  const keygenBin = findSshKeygen(sshd);
  const user = userInfo().username;

  // Privilege separation folder: sshd run as root refuses to start without it (the Debian service
  // creates it at boot; containers often lack it). Run as another user, sshd does not chroot.
  if (!existsSync('/run/sshd') && process.getuid?.() === 0) {
    try {
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new Error(`sshd needs the privilege separation folder /run/sshd and it could not be created (${(err as Error).message}); create it as root: mkdir -p /run/sshd`);
    }
  }

  let dir: string;
  if (opts.reuse) {
    dir = opts.reuse.dir;
    if (!existsSync(dir)) throw new Error(`cannot reuse ${dir}: the folder is gone (stop() removed it)`);
  } else {
    dir = mkdtempSync(path.join(tmpdir(), 'bkp-sshd-'));
    try {
      keygen(keygenBin, path.join(dir, 'ssh_host_ed25519_key'), 'bkp-test-host');
      keygen(keygenBin, path.join(dir, 'client_key'), 'bkp-test-client');
      writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client_key.pub')), { mode: 0o600 });
      mkdirSync(path.join(dir, 'root'));
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
  folderUsers.set(dir, (folderUsers.get(dir) ?? 0) + 1);

  const hostKeyFingerprint = fingerprintOf(keygenBin, path.join(dir, 'ssh_host_ed25519_key.pub'));
  const configFile = path.join(dir, 'sshd_config');
  const logFile = path.join(dir, 'sshd.log');
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '';
    }
  };

  let child: ChildProcess | undefined;
  let port = 0;
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = attempt === 0 && opts.reuse ? opts.reuse.port : await freePort();
    writeFileSync(configFile, sshdConfig(dir, port));
    const offset = existsSync(logFile) ? statSync(logFile).size : 0;
    const logFd = openSync(logFile, 'a');
    // sshd wants an absolute path to itself (it re-executes itself for each connection).
    const proc = spawn(sshd, ['-D', '-e', '-f', configFile], { stdio: ['ignore', logFd, logFd], cwd: dir });
    closeSync(logFd);
    const spawnError = new Promise<never>((_, reject) => proc.once('error', reject));
    try {
      await Promise.race([waitForListening(logFile, offset, port, proc, 15_000), spawnError]);
      child = proc;
    } catch (err) {
      lastError = err as Error;
      if (proc.exitCode === null && proc.signalCode === null) signalTree(proc.pid ?? 0, 'SIGKILL');
      // A port taken meanwhile (or, when reusing, still held): try another. Anything else is fatal.
      if (!/Address already in use|Cannot bind any address/i.test(log())) break;
    }
  }
  if (!child) {
    const tail = log();
    releaseFolder(dir);
    throw new Error(`sshd did not start: ${lastError?.message ?? 'unknown error'}\n--- sshd log ---\n${tail}`);
  }
  const proc = child;
  const pid = proc.pid as number;

  const knownHostsFile = path.join(dir, `known_hosts-${port}`);
  const hostPub = readFileSync(path.join(dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/);
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostPub[0]} ${hostPub[1]}\n`);

  let stopped = false;
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  proc.once('exit', () => running.delete(proc));
  const killSync = () => {
    running.delete(proc);
    if (alive()) signalTree(pid, 'SIGKILL');
  };
  running.set(proc, { killSync });
  stopOnExit(killAll);
  if (process.env.BKP_TEST_VERBOSE) console.error(`sshd on 127.0.0.1:${port} started in ${Date.now() - started} ms`);

  return {
    host: '127.0.0.1',
    port,
    user,
    root: path.join(dir, 'root'),
    privateKeyFile: path.join(dir, 'client_key'),
    hostKeyFingerprint,
    knownHostsFile,
    dir,
    log,
    kill() {
      if (alive()) signalTree(pid, 'SIGKILL');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(proc);
      if (alive()) {
        // Sessions first, while the listener is alive to reap them (orphans would wait for init).
        for (const p of descendants(pid)) {
          try {
            process.kill(p, 'SIGTERM');
          } catch {
            // gone
          }
        }
        for (let i = 0; i < 100 && descendants(pid).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
        signalTree(pid, 'SIGTERM');
      }
      const timer = setTimeout(() => signalTree(pid, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      releaseFolder(dir);
    },
  };
}
