// A private one-member etcd for the benchmark: plain-.mjs port of test/helpers/etcd-server.ts.
// Listens on 127.0.0.1 on free client and peer ports, data in a temp folder; stop() kills it and
// removes the folder; a member not stopped is killed when the process exits.
import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const running = new Map();
let hooked = false;
export function stopAllEtcdSync() {
  for (const kill of [...running.values()]) kill();
}
function installExitHook() {
  if (hooked) return;
  hooked = true;
  process.on('exit', stopAllEtcdSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const on = () => {
      stopAllEtcdSync();
      process.removeListener(sig, on);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, on);
  }
}

function healthy(endpoint) {
  return new Promise((resolve) => {
    execFile('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=1s', '--command-timeout=2s', 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000 }, (err) => resolve(!err));
  });
}

function tail(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Starts etcd; resolves to { endpoint, clientPort, peerPort, dir, dataDir, stop() }. */
export async function startEtcd({ name = 'bkp-bench', extraArgs = [] } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bkp-bench-etcd-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'log');
  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const args = [
      `--name=${name}`, `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`, `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${name}=${peer}`, '--initial-cluster-state=new',
      '--log-outputs=stderr', ...extraArgs,
    ];
    const log = openSync(logFile, 'w');
    const child = spawn('etcd', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    const killSync = () => {
      running.delete(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    running.set(child, killSync);
    installExitHook();
    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true));
    const deadline = Date.now() + 30_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await healthy(endpoint)) { up = true; break; }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (up) {
      let stopped = false;
      return {
        endpoint, clientPort, peerPort, dir, dataDir, pid: child.pid,
        async stop() {
          if (stopped) return;
          stopped = true;
          running.delete(child);
          if (child.exitCode === null && child.signalCode === null) {
            const gone = new Promise((r) => child.once('exit', () => r()));
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
            await gone;
            clearTimeout(t);
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    killSync();
    lastError = tail(logFile);
    if (!/address already in use/i.test(lastError)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`etcd did not start\n--- etcd log ---\n${lastError}`);
}
