import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './postgres-server.js';
import { stopOnExit } from './exit-hook.js';

/**
 * A real InfluxDB 1.x server of its own for one test (DESIGN §8): meta, data and WAL in a temp
 * folder, the HTTP API and the backup/restore RPC service on free 127.0.0.1 ports. `stop()` stops
 * it and removes the folder (and a server a test forgot is killed when the process exits).
 */
export interface InfluxServer {
  httpPort: number;
  rpcPort: number;
  /** `http://127.0.0.1:HTTP` */
  httpUrl: string;
  /** `127.0.0.1:RPC`, what `influxd backup -host` takes. */
  rpcAddress: string;
  dir: string;
  stop(): Promise<void>;
}

const INSTALL_HINT = 'The tests start their own InfluxDB 1.x server. Install it with `bash scripts/ensure-test-deps.sh` (or, as root: apt-get install influxdb influxdb-client), or set BKP_TEST_INFLUXD to an influxd binary.';

function influxdBinary(): string {
  const bin = process.env.BKP_TEST_INFLUXD ?? 'influxd';
  const r = spawnSync(bin, ['version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) throw new Error(`influxd not found or not runnable (${bin}: ${r.error?.message ?? r.stderr.trim()}). ${INSTALL_HINT}`);
  return bin;
}

function config(dir: string, httpPort: number, rpcPort: number): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${dir}/meta"
  logging-enabled = false

[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  write-tracing = false
  pprof-enabled = false

[logging]
  level = "error"
  suppress-logo = true

[continuous_queries]
  log-enabled = false

[monitor]
  store-enabled = true
  store-interval = "1s"
`;
}

const running = new Map<string, ChildProcess>();
/** Kills every server not stopped yet and removes its folder (see exit-hook.ts). */
const stopAll = () => {
  for (const [dir, child] of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
};

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function waitForPing(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 204) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function startInfluxd(): Promise<InfluxServer> {
  const bin = influxdBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'bkp-influx-'));
  const logFile = path.join(dir, 'log');
  let lastLog = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const httpPort = await freePort();
    let rpcPort = await freePort();
    while (rpcPort === httpPort) rpcPort = await freePort();
    const configFile = path.join(dir, 'influxdb.conf');
    writeFileSync(configFile, config(dir, httpPort, rpcPort));
    const fd = openSync(logFile, 'w');
    const child = spawn(bin, ['-config', configFile], { cwd: dir, stdio: ['ignore', fd, fd], env: { ...process.env, INFLUXDB_DATA_QUERY_LOG_ENABLED: 'false' } });
    closeSync(fd);
    child.on('error', () => undefined);
    const httpUrl = `http://127.0.0.1:${httpPort}`;
    running.set(dir, child);
    stopOnExit(stopAll);
    if (await waitForPing(httpUrl, child, 30_000)) {
      let stopped = false;
      return {
        httpPort,
        rpcPort,
        httpUrl,
        rpcAddress: `127.0.0.1:${rpcPort}`,
        dir,
        async stop() {
          if (stopped) return;
          stopped = true;
          running.delete(dir);
          await stopChild(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    running.delete(dir);
    await stopChild(child);
    lastLog = tail(logFile);
    // A port taken between freePort() and the bind: try others. Anything else is fatal.
    if (!/address already in use/i.test(lastLog)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`influxd did not start\n--- server log ---\n${lastLog}`);
}

/** Writes line protocol into a database (created first when missing). */
export async function writePoints(server: InfluxServer, db: string, lines: string[]): Promise<void> {
  await influxQuery(server, `CREATE DATABASE "${db}"`, undefined, 'POST');
  const r = await fetch(`${server.httpUrl}/write?db=${encodeURIComponent(db)}&precision=s`, { method: 'POST', body: lines.join('\n') });
  if (r.status !== 204) throw new Error(`write into ${db} failed: ${r.status} ${await r.text()}`);
}

/** Runs InfluxQL over HTTP and returns the JSON answer's first result. */
export async function influxQuery(server: InfluxServer, q: string, db?: string, method: 'GET' | 'POST' = 'GET'): Promise<{ series?: { name: string; columns: string[]; values: unknown[][] }[]; error?: string }> {
  const params = new URLSearchParams({ q });
  if (db) params.set('db', db);
  const r = await fetch(`${server.httpUrl}/query?${params.toString()}`, { method });
  const body = (await r.json()) as { results?: { series?: { name: string; columns: string[]; values: unknown[][] }[]; error?: string }[]; error?: string };
  if (body.error) throw new Error(`${q}: ${body.error}`);
  return body.results?.[0] ?? {};
}
