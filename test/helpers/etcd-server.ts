import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './postgres-server.js';
import { stopOnExit } from './exit-hook.js';

/**
 * A real etcd member of its own for one test (DESIGN §8): a one-member cluster listening on
 * 127.0.0.1 on free client and peer ports, its data in a temp folder (or in `dataDir`, e.g. a
 * data dir made by `bkp restore --to-dir`, which is then kept). `stop()` kills it and removes the
 * temp folder; a member a test forgot is killed when the process exits.
 */
export interface EtcdServer {
  /** `http://127.0.0.1:PORT`, the client URL. */
  endpoint: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'The tests start their own etcd. Install it with `bash scripts/ensure-test-deps.sh` (or, as root: apt-get install etcd-server etcd-client).';

function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    try {
      accessSync(path.join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Throws with the install command when etcd or etcdctl is missing. */
export function assertEtcdInstalled(): void {
  const missing = ['etcd', 'etcdctl'].filter((b) => !onPath(b));
  if (missing.length) throw new Error(`${missing.join(' and ')} not found in PATH. ${INSTALL_HINT}`);
}

/** Members not stopped yet, killed synchronously when the process exits. */
const running = new Map<ChildProcess, () => void>();
/** Kills every member not stopped yet (see exit-hook.ts). */
const stopAll = () => {
  for (const stop of [...running.values()]) stop();
};

/** `etcdctl endpoint health` answers true. */
function healthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=1s', '--command-timeout=2s', 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000 }, (err) => resolve(!err));
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startEtcd(opts: { dataDir?: string; name?: string; initialCluster?: string } = {}): Promise<EtcdServer> {
  assertEtcdInstalled();
  const dir = mkdtempSync(path.join(tmpdir(), 'bkp-etcd-'));
  const dataDir = opts.dataDir ?? path.join(dir, 'data');
  const name = opts.name ?? (opts.dataDir ? 'restored' : 'bkp-test');
  const logFile = path.join(dir, 'log');
  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    // A restored data dir already holds its membership (name and peer URL from `snapshot
    // restore`): etcd ignores --initial-cluster then, but it must still listen on a free port.
    // Its advertised peer URL stays the one given to restore, harmless for a one-member cluster.
    const args = [
      `--name=${name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${opts.initialCluster ?? `${name}=${peer}`}`,
      '--initial-cluster-state=new',
      '--log-outputs=stderr',
    ];
    const log = openSync(logFile, 'w');
    const child = spawn('etcd', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    const killSync = () => {
      running.delete(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    running.set(child, killSync);
    stopOnExit(stopAll);
    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true));
    const deadline = Date.now() + 30_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await healthy(endpoint)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (up) {
      let stopped = false;
      return {
        endpoint,
        clientPort,
        peerPort,
        dataDir,
        async stop() {
          if (stopped) return;
          stopped = true;
          running.delete(child);
          if (child.exitCode === null && child.signalCode === null) {
            const gone = new Promise<void>((r) => child.once('exit', () => r()));
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
            await gone;
            clearTimeout(timer);
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    killSync();
    lastError = tail(logFile);
    // A port taken between freePort() and the bind: try others. Anything else is fatal.
    if (!/address already in use/i.test(lastError)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`etcd did not start (data dir ${dataDir})\n--- etcd log ---\n${lastError}`);
}
