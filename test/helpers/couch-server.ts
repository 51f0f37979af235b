import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stopOnExit } from './exit-hook.js';

/**
 * A CouchDB-compatible server of its own for one test (DESIGN §8).
 *
 * By default: express-pouchdb 4.2 on in-memory PouchDB 9 (test/helpers/couch-server-child.mjs),
 * in a child process of its own, listening on 127.0.0.1 on a port the kernel picks. Each call
 * starts a new, empty server, so a test can run a source and a replica side by side and see a
 * `_replicator` document really reach the other server. `stop()` kills it; a server a test forgot
 * is killed when the test process exits (and the child exits by itself when its stdin closes).
 * `{ admin: true }` starts it with a server admin, ending the "admin party": `url` then carries
 * the credentials and a wrong password is answered 401.
 *
 * With `BKP_TEST_COUCHDB_URL` set to an Apache CouchDB (or Cloudant) URL with admin credentials,
 * e.g. `http://admin:secret@127.0.0.1:5984`, no server is started: every call returns that
 * server, with its own database-name prefix (`db('x')` → `bkp_t3f9a1c2_x`) so tests and the
 * "two servers" of one test never collide; `stop()` deletes every database with that prefix.
 * `real` says which kind a test got, for the few behaviours that differ (see the list in
 * test/couch-server.test.ts: `_scheduler/docs`, `_replication_state`, sequences, auth).
 */
export interface CouchServer {
  /** Base URL without a trailing slash; carries the admin credentials when there are any. */
  url: string;
  /** The same without credentials. */
  origin: string;
  /** `Basic …` for the admin, when there is one. */
  authorization?: string;
  /** The admin's name and password, when there is one. */
  admin?: { username: string; password: string };
  /** A database name of this instance: prefixed against a shared real server, as is otherwise. */
  db(name: string): string;
  /** Apache CouchDB from BKP_TEST_COUCHDB_URL (true) or the express-pouchdb child (false). */
  real: boolean;
  stop(): Promise<void>;
}

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'couch-server-child.mjs');

/** Servers not stopped yet, killed synchronously when the process exits. */
const running = new Map<ChildProcess, () => void>();
/** Kills every server not stopped yet (see exit-hook.ts). */
const stopAll = () => {
  for (const stop of [...running.values()]) stop();
};

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Splits `http://user:pw@host:port/` into an origin and its credentials. */
function splitUrl(raw: string): { origin: string; admin?: { username: string; password: string } } {
  const u = new URL(raw);
  const admin = u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined;
  u.username = '';
  u.password = '';
  return { origin: u.toString().replace(/\/+$/, ''), admin };
}

function withCredentials(origin: string, admin: { username: string; password: string } | undefined): string {
  if (!admin) return origin;
  const u = new URL(origin);
  u.username = encodeURIComponent(admin.username);
  u.password = encodeURIComponent(admin.password);
  return u.toString().replace(/\/+$/, '');
}

async function realServer(raw: string): Promise<CouchServer> {
  const { origin, admin } = splitUrl(raw);
  const authorization = admin ? basic(admin.username, admin.password) : undefined;
  // CouchDB names: lower case, starting with a letter.
  const prefix = `bkp_t${randomBytes(4).toString('hex')}_`;
  const headers: Record<string, string> = authorization ? { authorization } : {};
  const answer = await fetch(`${origin}/`, { headers, signal: AbortSignal.timeout(10_000) });
  if (!answer.ok) throw new Error(`BKP_TEST_COUCHDB_URL: ${origin} answered ${answer.status}`);
  return {
    url: withCredentials(origin, admin),
    origin,
    authorization,
    admin,
    db: (name) => `${prefix}${name}`,
    real: true,
    async stop() {
      const res = await fetch(`${origin}/_all_dbs`, { headers, signal: AbortSignal.timeout(30_000) });
      const names = res.ok ? ((await res.json()) as string[]) : [];
      for (const name of names.filter((n) => n.startsWith(prefix))) {
        await fetch(`${origin}/${encodeURIComponent(name)}`, { method: 'DELETE', headers, signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
      }
      // Replication documents a test left in the shared _replicator database: those naming one
      // of this instance's databases.
      const reps = await fetch(`${origin}/_replicator/_all_docs?include_docs=true`, { headers, signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
      if (reps?.ok) {
        const rows = ((await reps.json()) as { rows: { id: string; value: { rev: string }; doc?: Record<string, unknown> }[] }).rows;
        for (const r of rows.filter((x) => !x.id.startsWith('_design/') && JSON.stringify(x.doc ?? {}).includes(`/${prefix}`))) {
          await fetch(`${origin}/_replicator/${encodeURIComponent(r.id)}?rev=${r.value.rev}`, { method: 'DELETE', headers, signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
        }
      }
    },
  };
}

/** Starts a server (or returns the shared real one, see above). */
export async function startCouch(opts: { admin?: boolean } = {}): Promise<CouchServer> {
  const shared = process.env.BKP_TEST_COUCHDB_URL;
  if (shared) return realServer(shared);

  const dir = mkdtempSync(path.join(tmpdir(), 'bkp-couch-'));
  const admin = opts.admin ? { username: 'bkp-admin', password: randomBytes(9).toString('base64url') } : undefined;
  const args = [CHILD, dir, ...(admin ? [admin.username, admin.password] : [])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const killSync = () => {
    running.delete(child);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  running.set(child, killSync);
  stopOnExit(stopAll);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
    // A crash of the server shows in the test's output, not only as "other side closed".
    process.stderr.write(`[couch-server ${child.pid}] ${d}`);
  });

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('did not answer within 30s')), 30_000);
      createInterface({ input: child.stdout! }).once('line', (line) => {
        clearTimeout(timer);
        try {
          resolve((JSON.parse(line) as { port: number }).port);
        } catch {
          reject(new Error(`said ${line}`));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`exited (${signal ?? `code ${code}`})`));
      });
      child.once('error', reject);
    });
  } catch (err) {
    killSync();
    throw new Error(`the CouchDB-compatible test server did not start: ${(err as Error).message}\n${stderr}`);
  }
  // Drain its stdout so it never blocks on a full pipe.
  child.stdout!.resume();

  const origin = `http://127.0.0.1:${port}`;
  let stopped = false;
  return {
    url: withCredentials(origin, admin),
    origin,
    authorization: admin ? basic(admin.username, admin.password) : undefined,
    admin,
    db: (name) => name,
    real: false,
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(child);
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
