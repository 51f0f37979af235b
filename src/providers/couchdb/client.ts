import { UserError } from '../../core/diagnostics.js';
import { dbPath, type CouchEndpoint } from './settings.js';

/** Preflight and small requests: a server that does not answer fails in seconds. */
export const SHORT_TIMEOUT_MS = 15_000;
/** A page of documents or a batch of writes: generous, for slow links and big attachments. */
export const DATA_TIMEOUT_MS = 300_000;

/** A request CouchDB refused: the status and CouchDB's `error`/`reason`, for callers that expect some (404, 412). */
export class CouchHttpError extends UserError {
  constructor(
    message: string,
    readonly status: number,
    readonly error: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean>;
  body?: unknown;
  /** The database the request is about, named in errors. */
  db?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What `GET /` says: Apache CouchDB and Cloudant `{couchdb, version, vendor}`, express-pouchdb `{express-pouchdb, version, vendor}`. */
export interface ServerInfo {
  vendor: string;
  version: string;
}

export interface DbInfo {
  db_name: string;
  doc_count: number;
  doc_del_count?: number;
  /** An integer on PouchDB and CouchDB 1.x, an opaque string on CouchDB 2+ and Cloudant. */
  update_seq: number | string;
  props?: { partitioned?: boolean };
}

function isLoopback(origin: string): boolean {
  const host = new URL(origin).hostname;
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

/** Why fetch() failed, in a few words: `connection refused`, `no answer within 15s`. */
function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${Math.round(timeoutMs / 1000)}s`;
  if (e.name === 'AbortError') return 'cancelled';
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `no answer within ${Math.round(timeoutMs / 1000)}s`;
  return code ?? e.cause?.message ?? e.message;
}

/**
 * CouchDB's HTTP API with plain fetch: every request bounded by a timeout, every error one line
 * naming the server (never its credentials) and the database. nano is not used: it buffers whole
 * responses and its errors carry the request URL; here the export controls its own paging.
 */
export class CouchClient {
  /** For messages: `CouchDB server https://host`. */
  readonly where: string;
  private readonly headers: Record<string, string>;

  constructor(
    readonly endpoint: CouchEndpoint,
    readonly target: string,
  ) {
    this.where = `CouchDB server ${endpoint.origin}`;
    this.headers = {
      accept: 'application/json',
      // On loopback, compressing costs the server more CPU than it saves; across a network
      // (Cloudant), gzip cuts a JSON export's transfer several times.
      'accept-encoding': isLoopback(endpoint.origin) ? 'identity' : 'gzip',
      ...(endpoint.authorization ? { authorization: endpoint.authorization } : {}),
    };
  }

  /** `target T: database "db" on CouchDB server URL` or `target T: CouchDB server URL`. */
  subject(db?: string): string {
    return db === undefined ? `target ${this.target}: ${this.where}` : `target ${this.target}: database "${db}" on ${this.where}`;
  }

  /** Sends a request; a network failure or an error status becomes a one-line UserError. */
  private async send(method: string, path: string, opts: RequestOptions): Promise<Response> {
    const timeoutMs = opts.timeoutMs ?? SHORT_TIMEOUT_MS;
    const qs = opts.query ? `?${new URLSearchParams(Object.entries(opts.query).map(([k, v]): [string, string] => [k, String(v)])).toString()}` : '';
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
    let res: Response;
    try {
      res = await fetch(`${this.endpoint.origin}${path}${qs}`, {
        method,
        headers: opts.body === undefined ? this.headers : { ...this.headers, 'content-type': 'application/json' },
        body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
        signal,
      });
    } catch (err) {
      throw this.unreachable(err, method, path, opts, timeoutMs);
    }
    if (res.status >= 400) {
      const text = await res.text().catch(() => '');
      throw this.failure(res.status, text, method, path, opts.db);
    }
    return res;
  }

  private unreachable(err: unknown, method: string, path: string, opts: RequestOptions, timeoutMs: number): UserError {
    return new UserError(`${this.subject(opts.db)}: ${method} ${path}: unreachable: ${networkReason(err, timeoutMs)}`);
  }

  async text(method: string, path: string, opts: RequestOptions = {}): Promise<string> {
    const res = await this.send(method, path, opts);
    try {
      return await res.text();
    } catch (err) {
      throw this.unreachable(err, method, path, opts, opts.timeoutMs ?? SHORT_TIMEOUT_MS);
    }
  }

  /**
   * The answer's body as it arrives, for answers too big to hold (pages of documents). Reading
   * it pauses when the caller does, which holds the server back through TCP.
   */
  async stream(method: string, path: string, opts: RequestOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const res = await this.send(method, path, opts);
    const fail = (err: unknown) => this.unreachable(err, method, path, opts, opts.timeoutMs ?? SHORT_TIMEOUT_MS);
    return (async function* chunks() {
      // `res` itself, not only its body, stays referenced until the body is read: undici cancels
      // the body of a Response that is garbage-collected, and a prefetched page waits a while.
      if (!res.body) return;
      try {
        for await (const chunk of res.body) yield chunk;
      } catch (err) {
        throw fail(err);
      }
    })();
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const text = await this.text(method, path, opts);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new UserError(`${this.subject(opts.db)}: ${method} ${path}: not a JSON answer: ${text.slice(0, 120)}`);
    }
  }

  private failure(status: number, text: string, method: string, path: string, db: string | undefined): CouchHttpError {
    let error = '';
    let reason = '';
    try {
      const j = JSON.parse(text) as { error?: unknown; reason?: unknown };
      error = typeof j.error === 'string' ? j.error : '';
      reason = typeof j.reason === 'string' ? j.reason : '';
    } catch {
      reason = text.trim().slice(0, 200);
    }
    const said = [error, reason].filter(Boolean).join(': ');
    let message: string;
    if (status === 401) {
      message = this.endpoint.credentials
        ? `${this.subject(db)}: the user name or password in the URL was refused (401${said ? ` ${said}` : ''})`
        : `${this.subject(db)}: the server requires a user and password (401): give them in the URL as https://USER:PASSWORD@host`;
    } else if (status === 403) {
      message = `${this.subject(db)}: ${this.endpoint.credentials ? `user "${this.endpoint.credentials.username}"` : 'an anonymous user'} may not ${method === 'GET' || method === 'HEAD' ? 'read' : 'write'} this (403${said ? ` ${said}` : ''})`;
    } else if (status === 404 && db !== undefined && (path === dbPath(db) || /does not exist|no_db_file/i.test(reason))) {
      message = `target ${this.target}: database "${db}" does not exist on ${this.where}`;
    } else {
      message = `${this.subject(db)}: ${method} ${path.replace(/\?.*/, '')}: HTTP ${status}${said ? ` ${said}` : ''}`;
    }
    return new CouchHttpError(message, status, error, reason);
  }

  async serverInfo(): Promise<ServerInfo> {
    const j = await this.json<{ couchdb?: string; 'express-pouchdb'?: string; version?: string; vendor?: { name?: string; version?: string } }>('GET', '/');
    const vendor = j.vendor?.name ?? (j['express-pouchdb'] !== undefined ? 'express-pouchdb' : j.couchdb !== undefined ? 'Apache CouchDB' : 'unknown');
    return { vendor, version: j.version ?? j.vendor?.version ?? 'unknown' };
  }

  /** The database's info, or a one-line error naming it and the server when it does not exist. */
  dbInfo(db: string): Promise<DbInfo> {
    return this.json<DbInfo>('GET', dbPath(db), { db });
  }

  /** The database's info, or undefined when it does not exist. */
  async dbInfoIfExists(db: string): Promise<DbInfo | undefined> {
    try {
      return await this.dbInfo(db);
    } catch (err) {
      if (err instanceof CouchHttpError && err.status === 404) return undefined;
      throw err;
    }
  }

  allDbs(): Promise<string[]> {
    return this.json<string[]>('GET', '/_all_dbs');
  }

  async createDb(db: string, partitioned = false): Promise<void> {
    try {
      await this.json('PUT', dbPath(db), { db, query: partitioned ? { partitioned: true } : undefined });
    } catch (err) {
      // 412: created meanwhile (by a replication with create_target, say): what we wanted.
      if (!(err instanceof CouchHttpError && err.status === 412)) throw err;
    }
  }
}
