// A private OpenSSH server for the storage bench: the approach of test/helpers/sshd-server.ts in
// plain JS (bench/ runs without a TypeScript step). Debian's /usr/sbin/sshd (not the system's
// service) with its own ed25519 host key, config, authorized key and log in a temp folder,
// listening on 127.0.0.1 on a free port, serving SFTP with `internal-sftp`; the login user is the
// current user (root: `PermitRootLogin prohibit-password`).
//
// Differences from the test helper: LogLevel DEBUG1, so the log names the cipher each connection
// negotiated (`kex: client->server cipher: …`), which the bench reports; no `reuse`/`kill`.

import { execFileSync, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

const onPath = (bin) => (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, bin));

/** BKP_TEST_SSHD, else sshd in /usr/sbin, /usr/local/sbin or on PATH; undefined when none. */
export function findSshd() {
  const override = process.env.BKP_TEST_SSHD;
  if (override) return isExecutable(override) ? override : undefined;
  return ['/usr/sbin/sshd', '/usr/local/sbin/sshd', ...onPath('sshd')].find(isExecutable);
}

function findSshKeygen(sshd) {
  return [path.join(path.dirname(sshd), '..', 'bin', 'ssh-keygen'), '/usr/bin/ssh-keygen', ...onPath('ssh-keygen')].find(isExecutable);
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

/** Every descendant pid of `pid`, read from /proc (sshd's sessions call setsid(): a group kill misses them). */
function descendants(pid) {
  const parentOf = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parentOf.get(ppid) ?? [];
      list.push(Number(entry));
      parentOf.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of parentOf.get(queue.shift()) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function signalTree(pid, signal) {
  for (const p of [pid, ...descendants(pid)]) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

/** Servers still running: killed synchronously if the bench exits without stopping them. */
const running = new Set();
let hookInstalled = false;
export function stopAllSshdSync() {
  for (const s of [...running]) s.killSync();
}
function installExitHook() {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', stopAllSshdSync);
}

function sshdConfig(dir, port) {
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
    'LogLevel DEBUG1',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

function waitForListening(logFile, port, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const line = `Server listening on 127.0.0.1 port ${port}.`;
  return new Promise((resolve, reject) => {
    const check = () => {
      let text = '';
      try {
        text = readFileSync(logFile, 'utf8');
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

/**
 * Starts the server. Resolves { host, port, user, root, privateKeyFile, hostKeyFingerprint, dir,
 * version, log(), ciphers(), stop() }.
 */
export async function startSshd() {
  const sshd = findSshd();
  if (!sshd) throw new Error('sshd not found (apt-get install openssh-server, or set BKP_TEST_SSHD)');
  const keygenBin = findSshKeygen(sshd);
  if (!keygenBin) throw new Error('ssh-keygen not found (apt-get install openssh-client)');
  if (!existsSync('/run/sshd') && process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = mkdtempSync(path.join(tmpdir(), 'bkp-bench-sshd-'));
  const keygen = (file, comment) => execFileSync(keygenBin, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'pipe' });
  keygen(path.join(dir, 'ssh_host_ed25519_key'), 'bkp-bench-host');
  keygen(path.join(dir, 'client_key'), 'bkp-bench-client');
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client_key.pub')), { mode: 0o600 });
  mkdirSync(path.join(dir, 'root'));
  const fp = execFileSync(keygenBin, ['-l', '-E', 'sha256', '-f', path.join(dir, 'ssh_host_ed25519_key.pub')], { encoding: 'utf8' }).split(/\s+/)[1];

  const logFile = path.join(dir, 'sshd.log');
  const configFile = path.join(dir, 'sshd_config');
  let child;
  let port = 0;
  let lastError;
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    writeFileSync(configFile, sshdConfig(dir, port));
    writeFileSync(logFile, '');
    const logFd = openSync(logFile, 'a');
    const proc = spawn(sshd, ['-D', '-e', '-f', configFile], { stdio: ['ignore', logFd, logFd], cwd: dir });
    closeSync(logFd);
    try {
      await Promise.race([waitForListening(logFile, port, proc, 15_000), new Promise((_, reject) => proc.once('error', reject))]);
      child = proc;
    } catch (err) {
      lastError = err;
      if (proc.exitCode === null && proc.signalCode === null) signalTree(proc.pid ?? 0, 'SIGKILL');
      if (!/Address already in use|Cannot bind any address/i.test(readFileSync(logFile, 'utf8'))) break;
    }
  }
  if (!child) {
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start: ${lastError?.message}\n${tail}`);
  }
  const pid = child.pid;
  const alive = () => child.exitCode === null && child.signalCode === null;
  const exited = new Promise((resolve) => (alive() ? child.once('exit', resolve) : resolve()));
  let version;
  try {
    version = execFileSync(sshd, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    version = String(err.stderr ?? '').trim().split('\n')[0]; // sshd -V prints to stderr and exits 1 on old versions
  }
  const server = {
    killSync() {
      running.delete(server);
      if (alive()) signalTree(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(server);
  installExitHook();
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    host: '127.0.0.1',
    port,
    user: userInfo().username,
    root: path.join(dir, 'root'),
    privateKeyFile: path.join(dir, 'client_key'),
    hostKeyFingerprint: fp,
    dir,
    version,
    log,
    /** `client->server` ciphers negotiated so far, in order: one per connection. */
    ciphers() {
      return [...log().matchAll(/kex: client->server cipher: (\S+)/g)].map((m) => m[1]);
    },
    async stop() {
      running.delete(server);
      if (alive()) {
        for (const p of descendants(pid)) {
          try {
            process.kill(p, 'SIGTERM');
          } catch {
            // gone
          }
        }
        signalTree(pid, 'SIGTERM');
        const timer = setTimeout(() => signalTree(pid, 'SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
