import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { Binary, deserialize, Long, ObjectId, serialize, type Document } from 'bson';

/**
 * A MongoDB server double that speaks the real wire protocol to the real `mongodb` driver
 * (DESIGN §8: `mongodb-mock-server` hangs with driver 7). It is a test double, not a database:
 * it answers the handshake (OP_QUERY `isMaster`, then OP_MSG), SCRAM-SHA-256 authentication
 * (speculative, or saslStart/saslContinue) and the commands bkp and the stand-in tools send —
 * ping, buildInfo, listDatabases, listCollections, count, the `$match`/`$group` aggregate of
 * countDocuments, insert, create, drop, dropDatabase, endSessions, killCursors — over an
 * in-memory map the test sets. Anything else is answered with CommandNotFound, and every
 * command is recorded, so a test sees exactly what the driver sent.
 */

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const OP_COMPRESSED = 2012;

/** MongoDB 7.0 speaks wire version 21; the driver needs at least 9 (4.4). */
const MAX_WIRE_VERSION = 21;

export interface StoredCollection {
  type: 'collection' | 'view';
  documents: Document[];
  /** For a view: the collection it reads. */
  viewOn?: string;
}

export interface MongoWireServerOptions {
  /** The version `buildInfo` reports. */
  version?: string;
  /** Users (in `admin`) that must authenticate; none: every command is allowed. */
  users?: Record<string, string>;
}

export interface MongoWireServer {
  port: number;
  /** `mongodb://127.0.0.1:PORT` with no credentials. */
  address: string;
  /** databases → collections, live: tests read and set it. */
  data: Map<string, Map<string, StoredCollection>>;
  /** `db.command` for every command received, in order. */
  commands: string[];
  setDatabase(db: string, collections: Record<string, Document[]>, views?: Record<string, string>): void;
  counts(db: string): Record<string, number>;
  stop(): Promise<void>;
}

interface Scram {
  user: string;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  salted: Buffer;
}

interface ConnState {
  id: number;
  authenticated: boolean;
  scram?: Scram;
}

class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly codeName: string,
  ) {
    super(message);
  }
}

/** The bytes of a BSON Binary (its buffer may be larger than what it holds). */
function bytes(v: unknown): Uint8Array {
  return v instanceof Binary ? v.buffer.subarray(0, v.position) : v instanceof Uint8Array ? v : new Uint8Array(0);
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

const SALT = randomBytes(16);
const ITERATIONS = 4096;

export async function startMongoWireServer(opts: MongoWireServerOptions = {}): Promise<MongoWireServer> {
  const version = opts.version ?? '7.0.14';
  const users = opts.users ?? {};
  const data = new Map<string, Map<string, StoredCollection>>();
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;

  const database = (db: string, create: boolean) => {
    let d = data.get(db);
    if (!d && create) {
      d = new Map();
      data.set(db, d);
    }
    return d;
  };

  const scramStart = (conn: ConnState, mechanism: unknown, payload: Uint8Array): Document => {
    if (mechanism !== 'SCRAM-SHA-256') throw new CommandError(`Received authentication for mechanism ${String(mechanism)} which is not enabled`, 334, 'MechanismUnavailable');
    const text = Buffer.from(payload).toString('utf8');
    const m = /^n,,(n=([^,]*),r=([^,]*))$/.exec(text);
    if (!m) throw new CommandError('Invalid SCRAM client first message', 17, 'ProtocolError');
    const user = m[2]!.replace(/=2C/g, ',').replace(/=3D/g, '=');
    const nonce = `${m[3]}${randomBytes(18).toString('base64')}`;
    const serverFirst = `r=${nonce},s=${SALT.toString('base64')},i=${ITERATIONS}`;
    const password = users[user];
    // An unknown user still gets a conversation (as mongod does), and fails at the proof.
    const salted = pbkdf2Sync(password ?? randomBytes(16).toString('hex'), SALT, ITERATIONS, 32, 'sha256');
    conn.scram = { user, clientFirstBare: m[1]!, serverFirst, nonce, salted };
    return { conversationId: 1, done: false, payload: new Binary(Buffer.from(serverFirst)), ok: 1 };
  };

  const scramContinue = (conn: ConnState, payload: Uint8Array): Document => {
    const s = conn.scram;
    if (!s) throw new CommandError('No SASL session state found', 17, 'ProtocolError');
    const text = Buffer.from(payload).toString('utf8');
    if (text === '' && conn.authenticated) return { conversationId: 1, done: true, payload: new Binary(Buffer.alloc(0)), ok: 1 };
    const m = /^(c=biws,r=([^,]*)),p=(.*)$/.exec(text);
    const fail = new CommandError('Authentication failed.', 18, 'AuthenticationFailed');
    if (!m || m[2] !== s.nonce) throw fail;
    const authMessage = `${s.clientFirstBare},${s.serverFirst},${m[1]}`;
    const clientKey = hmac(s.salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.from(m[3]!, 'base64');
    const recovered = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
    if (users[s.user] === undefined || recovered.length !== 32 || !timingSafeEqual(createHash('sha256').update(recovered).digest(), storedKey)) throw fail;
    conn.authenticated = true;
    const serverSignature = hmac(hmac(s.salted, 'Server Key'), authMessage).toString('base64');
    return { conversationId: 1, done: true, payload: new Binary(Buffer.from(`v=${serverSignature}`)), ok: 1 };
  };

  const hello = (conn: ConnState, cmd: Document): Document => {
    const reply: Document = {
      helloOk: true,
      ismaster: true,
      isWritablePrimary: true,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: conn.id,
      minWireVersion: 0,
      maxWireVersion: MAX_WIRE_VERSION,
      readOnly: false,
      ok: 1,
    };
    if (typeof cmd.saslSupportedMechs === 'string') reply.saslSupportedMechs = ['SCRAM-SHA-256'];
    const spec = cmd.speculativeAuthenticate as Document | undefined;
    if (spec && spec.saslStart === 1 && spec.mechanism === 'SCRAM-SHA-256') {
      reply.speculativeAuthenticate = scramStart(conn, spec.mechanism, bytes(spec.payload));
    }
    return reply;
  };

  const cursor = (ns: string, batch: Document[]): Document => ({ cursor: { id: Long.ZERO, ns, firstBatch: batch }, ok: 1 });

  const run = (conn: ConnState, db: string, cmd: Document, sequences: Record<string, Document[]>): Document => {
    const name = Object.keys(cmd)[0] ?? '';
    commands.push(`${db}.${name}`);
    const lower = name.toLowerCase();
    if (lower === 'hello' || lower === 'ismaster') return hello(conn, cmd);
    if (name === 'saslStart') return scramStart(conn, cmd.mechanism, bytes(cmd.payload));
    if (name === 'saslContinue') return scramContinue(conn, bytes(cmd.payload));
    if (name === 'ping') return { ok: 1 };
    if (name === 'endSessions') return { ok: 1 };
    if (Object.keys(users).length > 0 && !conn.authenticated) throw new CommandError(`Command ${name} requires authentication`, 13, 'Unauthorized');
    switch (name) {
      case 'buildInfo':
      case 'buildinfo': {
        const parts = version.split('.').map(Number);
        return { version, gitVersion: 'wire-protocol-double', versionArray: [...parts, 0], bits: 64, maxBsonObjectSize: 16 * 1024 * 1024, ok: 1 };
      }
      case 'listDatabases': {
        const names = ['admin', 'config', 'local', ...[...data.keys()].filter((d) => (data.get(d)?.size ?? 0) > 0)].sort();
        const databases = names.map((n) => (cmd.nameOnly ? { name: n } : { name: n, sizeOnDisk: 8192, empty: false }));
        return cmd.nameOnly ? { databases, ok: 1 } : { databases, totalSize: 8192 * names.length, ok: 1 };
      }
      case 'listCollections': {
        const colls = [...(database(db, false)?.entries() ?? [])].sort(([a], [b]) => (a < b ? -1 : 1));
        const batch = colls.map(([n, c]) =>
          cmd.nameOnly ? { name: n, type: c.type } : { name: n, type: c.type, options: c.viewOn ? { viewOn: c.viewOn, pipeline: [] } : {}, info: { readOnly: c.type === 'view' } },
        );
        return cursor(`${db}.$cmd.listCollections`, batch);
      }
      case 'count': {
        const c = database(db, false)?.get(String(cmd.count));
        if (cmd.query && Object.keys(cmd.query as Document).length > 0) throw new CommandError('the double counts whole collections only', 2, 'BadValue');
        return { n: c?.documents.length ?? 0, ok: 1 };
      }
      case 'aggregate': {
        const coll = String(cmd.aggregate);
        const pipeline = cmd.pipeline as Document[];
        // countDocuments({}): [{ $match: {} }, { $group: { _id: 1, n: { $sum: 1 } } }]
        const isCount = pipeline.length === 2 && Object.keys(pipeline[0]!.$match ?? { x: 1 }).length === 0 && pipeline[1]!.$group !== undefined;
        if (!isCount) throw new CommandError(`the double runs only countDocuments' pipeline, not ${JSON.stringify(pipeline)}`, 2, 'BadValue');
        const c = database(db, false)?.get(coll);
        if (c?.type === 'view') throw new CommandError('the double does not evaluate views', 2, 'BadValue');
        const n = c?.documents.length ?? 0;
        return cursor(`${db}.${coll}`, n > 0 ? [{ _id: 1, n }] : []);
      }
      case 'insert': {
        const docs = (cmd.documents as Document[] | undefined) ?? sequences.documents ?? [];
        const coll = String(cmd.insert);
        const d = database(db, true)!;
        let c = d.get(coll);
        if (!c) {
          c = { type: 'collection', documents: [] };
          d.set(coll, c);
        }
        for (const doc of docs) {
          if (doc._id === undefined) doc._id = new ObjectId();
          c.documents.push(doc);
        }
        return { n: docs.length, ok: 1 };
      }
      case 'create': {
        const d = database(db, true)!;
        const coll = String(cmd.create);
        if (!d.has(coll)) d.set(coll, typeof cmd.viewOn === 'string' ? { type: 'view', documents: [], viewOn: cmd.viewOn } : { type: 'collection', documents: [] });
        return { ok: 1 };
      }
      case 'drop': {
        // As MongoDB 7.0: dropping a collection that does not exist succeeds.
        database(db, false)?.delete(String(cmd.drop));
        return { ns: `${db}.${String(cmd.drop)}`, nIndexesWas: 1, ok: 1 };
      }
      case 'dropDatabase':
        data.delete(db);
        return { ok: 1 };
      case 'killCursors':
        return { cursorsKilled: cmd.cursors ?? [], cursorsNotFound: [], cursorsAlive: [], cursorsUnknown: [], ok: 1 };
      default:
        throw new CommandError(`no such command: '${name}'`, 59, 'CommandNotFound');
    }
  };

  const answer = (conn: ConnState, db: string, cmd: Document, sequences: Record<string, Document[]> = {}): Document => {
    try {
      return run(conn, db, cmd, sequences);
    } catch (err) {
      if (err instanceof CommandError) return { ok: 0, errmsg: err.message, code: err.code, codeName: err.codeName };
      return { ok: 0, errmsg: (err as Error).message, code: 1, codeName: 'InternalError' };
    }
  };

  const header = (length: number, requestId: number, responseTo: number, opCode: number): Buffer => {
    const h = Buffer.alloc(16);
    h.writeInt32LE(length, 0);
    h.writeInt32LE(requestId, 4);
    h.writeInt32LE(responseTo, 8);
    h.writeInt32LE(opCode, 12);
    return h;
  };

  let nextRequestId = 1;
  const reply = (socket: net.Socket, opCode: number, responseTo: number, doc: Document) => {
    const body = serialize(doc);
    if (opCode === OP_QUERY) {
      const fields = Buffer.alloc(20);
      fields.writeInt32LE(0, 0); // responseFlags
      fields.writeBigInt64LE(0n, 4); // cursorID
      fields.writeInt32LE(0, 12); // startingFrom
      fields.writeInt32LE(1, 16); // numberReturned
      socket.write(Buffer.concat([header(16 + 20 + body.length, nextRequestId++, responseTo, OP_REPLY), fields, body]));
    } else {
      const flags = Buffer.from([0, 0, 0, 0, 0]); // flagBits, then section kind 0
      socket.write(Buffer.concat([header(16 + 5 + body.length, nextRequestId++, responseTo, OP_MSG), flags, body]));
    }
  };

  const handle = (socket: net.Socket, conn: ConnState, msg: Buffer) => {
    const requestId = msg.readInt32LE(4);
    const opCode = msg.readInt32LE(12);
    if (opCode === OP_QUERY) {
      let off = 20;
      const nsEnd = msg.indexOf(0, off);
      const ns = msg.toString('utf8', off, nsEnd);
      off = nsEnd + 1 + 8;
      const query = deserialize(msg.subarray(off, off + msg.readInt32LE(off)));
      const cmd = (query.$query as Document | undefined) ?? query;
      return reply(socket, OP_QUERY, requestId, answer(conn, ns.split('.')[0]!, cmd));
    }
    if (opCode === OP_MSG) {
      const flags = msg.readUInt32LE(16);
      const end = flags & 1 ? msg.length - 4 : msg.length;
      let off = 20;
      let body: Document | undefined;
      const sequences: Record<string, Document[]> = {};
      while (off < end) {
        const kind = msg[off++];
        if (kind === 0) {
          const size = msg.readInt32LE(off);
          body = deserialize(msg.subarray(off, off + size));
          off += size;
        } else {
          const size = msg.readInt32LE(off);
          const stop = off + size;
          const idEnd = msg.indexOf(0, off + 4);
          const id = msg.toString('utf8', off + 4, idEnd);
          const docs: Document[] = [];
          for (let p = idEnd + 1; p < stop; ) {
            const n = msg.readInt32LE(p);
            docs.push(deserialize(msg.subarray(p, p + n)));
            p += n;
          }
          sequences[id] = docs;
          off = stop;
        }
      }
      if (!body) return;
      const result = answer(conn, String(body.$db ?? 'admin'), body, sequences);
      // moreToCome: the client expects no answer (unacknowledged writes).
      if (flags & 2) return;
      return reply(socket, OP_MSG, requestId, result);
    }
    if (opCode === OP_COMPRESSED) socket.destroy(new Error('the double never offers compression'));
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const conn: ConnState = { id: ++connections, authenticated: false };
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 4) {
        const length = buffered.readInt32LE(0);
        if (buffered.length < length) break;
        const msg = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        handle(socket, conn, msg);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    address: `mongodb://127.0.0.1:${port}`,
    data,
    commands,
    setDatabase(db, collections, views = {}) {
      const d = new Map<string, StoredCollection>();
      for (const [name, docs] of Object.entries(collections)) d.set(name, { type: 'collection', documents: docs.map((x) => ({ ...x })) });
      for (const [name, on] of Object.entries(views)) d.set(name, { type: 'view', documents: [], viewOn: on });
      data.set(db, d);
    },
    counts(db) {
      const out: Record<string, number> = {};
      for (const [name, c] of data.get(db) ?? []) if (c.type === 'collection') out[name] = c.documents.length;
      return out;
    },
    stop() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
