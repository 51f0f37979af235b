// Stand-ins for `mongodump` and `mongorestore` in bkp's tests. They are NOT the MongoDB Database
// Tools (which cannot be installed on the test machines): they accept only the arguments bkp is
// meant to pass, record what they were given, and do the least a real tool would.
//
//   mongodump:    checks its arguments and --config file, pings the server with the real driver,
//                 then streams the fixture archive $MONGO_STANDIN_FIXTURES/<db>.archive.gz.
//   mongorestore: checks its arguments and --config file, reads the whole archive from stdin,
//                 parses it, and writes its documents into the server with the real driver,
//                 honouring --nsInclude, --nsFrom/--nsTo and --drop.
//
// Each run appends one JSON line to $MONGO_STANDIN_LOG: the tool, its argv, the --config file's
// mode and contents, and (mongorestore) the sha256 of what arrived on stdin.
// Knobs for failure tests: MONGO_STANDIN_FAIL=mongodump-midway (half the archive, then exit 1);
// MONGO_STANDIN_LOSE=COLL:N (mongorestore leaves out N documents of COLL, reporting them failed).
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { deserialize } from 'bson';
import { MongoClient } from 'mongodb';

const [tool, ...argv] = process.argv.slice(2);
const VERSION = process.env.MONGO_STANDIN_VERSION ?? '100.9.4';
const SPEC = {
  mongodump: { values: ['config', 'db'], flags: ['archive', 'gzip'], required: ['config', 'db', 'archive', 'gzip'] },
  mongorestore: { values: ['config', 'nsInclude', 'nsFrom', 'nsTo'], flags: ['archive', 'gzip', 'drop'], required: ['config', 'archive', 'gzip', 'nsInclude'] },
}[tool];

function log(line) {
  process.stderr.write(`${new Date().toISOString()}\t${line}\n`);
}

function fail(message, code = 1) {
  log(`Failed: ${message}`);
  process.exit(code);
}

function record(entry) {
  if (process.env.MONGO_STANDIN_LOG) appendFileSync(process.env.MONGO_STANDIN_LOG, `${JSON.stringify({ tool, argv, ...entry })}\n`);
}

if (!SPEC) fail(`mongo-standin: unknown tool ${tool}`, 2);
if (argv.length === 1 && argv[0] === '--version') {
  process.stdout.write(`${tool} version: ${VERSION}\ngit version: stand-in (bkp tests)\nGo version: go1.21.0\n   os: linux\n   arch: amd64\n   compiler: gc\n`);
  process.exit(0);
}

// Options as go-flags takes them, limited to what bkp must use: `--name=value` and bare flags.
const opts = {};
for (const arg of argv) {
  const m = /^--([A-Za-z]+)(?:=(.*))?$/.exec(arg);
  if (!m) fail(`error parsing command line options: stand-in ${tool} takes only --name=value options (got ${JSON.stringify(arg)})`, 3);
  const [, name, value] = m;
  if (['uri', 'password', 'username', 'host', 'port'].includes(name)) fail(`the stand-in refuses --${name}: bkp must pass the connection string in its --config file, where ps cannot show it`, 3);
  if (SPEC.flags.includes(name)) {
    if (value !== undefined) fail(`stand-in ${tool}: --${name} takes no value here (bkp streams the archive through ${tool === 'mongodump' ? 'stdout' : 'stdin'})`, 3);
    opts[name] = true;
  } else if (SPEC.values.includes(name)) {
    if (value === undefined || value === '') fail(`error parsing command line options: expected argument for flag \`--${name}'`, 3);
    opts[name] = value;
  } else {
    fail(`error parsing command line options: unknown option \`${name}'`, 3);
  }
}
for (const r of SPEC.required) if (opts[r] === undefined) fail(`stand-in ${tool}: bkp must pass --${r}`, 3);
if ((opts.nsFrom === undefined) !== (opts.nsTo === undefined)) fail('--nsFrom and --nsTo must be given together', 3);

// The --config file: private, YAML with the connection string.
const st = statSync(opts.config, { throwIfNoEntry: false });
if (!st) fail(`error opening config file: open ${opts.config}: no such file or directory`);
const mode = st.mode & 0o777;
const content = readFileSync(opts.config, 'utf8');
if ((mode & 0o077) !== 0) fail(`stand-in ${tool}: the config file is readable by others (mode ${mode.toString(8)})`);
const cm = /^uri: (".*")\n?$/.exec(content);
if (!cm) fail(`stand-in ${tool}: the config file must hold one line uri: "…" (got ${JSON.stringify(content)})`);
const uri = JSON.parse(cm[1]);
const um = /^mongodb(?:\+srv)?:\/\/(?:[^@/?]*@)?[^/?]+(?:\/([^?]*))?/.exec(uri);
if (!um) fail(`error parsing uri: ${uri.replace(/:[^:@/]*@/, ':***@')}`);
const uriDb = um[1] ? decodeURIComponent(um[1]) : '';
// The real tools treat the URI's database as --db: refuse what they refuse.
if (tool === 'mongodump' && uriDb && uriDb !== opts.db) fail(`Invalid Options: Cannot specify different database in connection URI and command-line option ("${uriDb}" and "${opts.db}")`);
if (tool === 'mongorestore' && uriDb) fail(`error parsing command line options: cannot use a database in the connection URI ("${uriDb}") with --nsInclude`);
const entry = { config: { path: opts.config, mode: mode.toString(8), content }, uri };

async function connect() {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 3000, appName: `stand-in ${tool}` });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } catch (err) {
    await client.close().catch(() => undefined);
    fail(`can't create session: failed to connect to ${uri.replace(/:[^:@/]*@/, ':***@')}: ${err.message}`);
  }
  return client;
}

async function mongodump() {
  const client = await connect();
  await client.close();
  const fixture = path.join(process.env.MONGO_STANDIN_FIXTURES ?? '.', `${opts.db}.archive.gz`);
  if (!existsSync(fixture)) fail(`stand-in mongodump: no fixture archive ${fixture}`);
  const bytes = readFileSync(fixture);
  record({ ...entry, fixture, streamed: { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } });
  log(`stand-in mongodump: streaming the fixture archive of database ${opts.db} (${bytes.length} bytes) to stdout`);
  if (process.env.MONGO_STANDIN_FAIL === 'mongodump-midway') {
    await new Promise((resolve) => process.stdout.write(bytes.subarray(0, Math.floor(bytes.length / 2)), resolve));
    fail(`error writing data for collection \`${opts.db}.encounters\` to disk: connection reset by peer`);
  }
  await new Promise((resolve) => process.stdout.write(bytes, resolve));
}

/** The archive's namespaces → documents, read with its own small parser (not bkp's). */
function parseArchive(buf) {
  if (buf.readUInt32LE(0) !== 0x8199e26d) fail('stream or file does not appear to be a mongodump archive');
  let off = 4;
  const doc = () => {
    const n = buf.readInt32LE(off);
    const d = buf.subarray(off, off + n);
    off += n;
    return d;
  };
  const terminator = () => {
    if (buf.readInt32LE(off) === -1) {
      off += 4;
      return true;
    }
    return false;
  };
  doc(); // header
  const types = new Map();
  while (!terminator()) {
    const m = deserialize(doc());
    types.set(`${m.db}.${m.collection}`, m.type ?? 'collection');
  }
  const namespaces = new Map();
  while (off < buf.length) {
    const h = deserialize(doc());
    const ns = `${h.db}.${h.collection}`;
    if (!namespaces.has(ns)) namespaces.set(ns, { db: h.db, collection: h.collection, type: types.get(ns) ?? 'collection', docs: [] });
    while (!terminator()) namespaces.get(ns).docs.push(deserialize(doc(), { promoteValues: false, promoteLongs: false }));
  }
  return [...namespaces.values()];
}

const unescapeDb = (pattern) => pattern.replace(/\.\*$/, '').replace(/\\(.)/g, '$1');

async function mongorestore() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const input = Buffer.concat(chunks);
  const stdin = { bytes: input.length, sha256: createHash('sha256').update(input).digest('hex') };
  let archive;
  try {
    archive = gunzipSync(input);
  } catch (err) {
    fail(`stream or file does not appear to be a mongodump archive (gzip: ${err.message})`);
  }
  const include = unescapeDb(opts.nsInclude);
  const from = opts.nsFrom ? unescapeDb(opts.nsFrom) : undefined;
  const to = opts.nsTo ? unescapeDb(opts.nsTo) : undefined;
  const [loseColl, loseN] = (process.env.MONGO_STANDIN_LOSE ?? ':0').split(':');
  const client = await connect();
  let restored = 0;
  let failed = 0;
  const written = {};
  for (const ns of parseArchive(archive)) {
    if (ns.db !== include || ns.type === 'view' || ns.collection.startsWith('system.')) continue;
    const db = from !== undefined && ns.db === from ? to : ns.db;
    const coll = client.db(db).collection(ns.collection);
    if (opts.drop) {
      log(`dropping collection ${db}.${ns.collection} before restoring`);
      await coll.drop();
    }
    const lose = ns.collection === loseColl ? Number(loseN) : 0;
    const docs = ns.docs.slice(0, Math.max(0, ns.docs.length - lose));
    if (docs.length > 0) await coll.insertMany(docs, { ordered: true });
    else await client.db(db).command({ create: ns.collection }).catch((err) => (err.code === 48 ? undefined : Promise.reject(err)));
    log(`finished restoring ${db}.${ns.collection} (${docs.length} documents, ${ns.docs.length - docs.length} failures)`);
    restored += docs.length;
    failed += ns.docs.length - docs.length;
    written[`${db}.${ns.collection}`] = docs.length;
  }
  await client.close();
  record({ ...entry, stdin, written });
  log(`${restored} document(s) restored successfully. ${failed} document(s) failed to restore.`);
}

await (tool === 'mongodump' ? mongodump() : mongorestore());
