// A CouchDB-compatible server (express-pouchdb on in-memory PouchDB) in a process of its own:
// test/helpers/couch-server.ts starts it, and bench/lib/couchdb-bench.mjs too.
//
// Usage: node couch-server-child.mjs WORKDIR [ADMIN_USER ADMIN_PASSWORD]
// Listens on 127.0.0.1 on a port the kernel picks (no race between choosing a port and binding
// it), then prints one line `{"port":N}` on stdout. Exits when its stdin closes, so a parent that
// dies without stopping it does not leave it behind.
//
// One process per server because memdown keeps databases in a module-level map keyed by name:
// two servers in one process would share their databases, and "replication to the other
// server" would prove nothing.
import express from 'express';
import expressPouchDB from 'express-pouchdb';
import PouchDB from 'pouchdb-core';
import memory from 'pouchdb-adapter-memory';
import httpAdapter from 'pouchdb-adapter-http';
import replication from 'pouchdb-replication';
import mapreduce from 'pouchdb-mapreduce';
import path from 'node:path';

const [workdir, adminUser, adminPassword] = process.argv.slice(2);
if (!workdir) {
  process.stderr.write('usage: couch-server-child.mjs WORKDIR [ADMIN_USER ADMIN_PASSWORD]\n');
  process.exit(2);
}

// The plain constructor with the memory adapter plugged in, which makes memory the preferred
// adapter for bare names while `http://…` names still pick the http adapter. NOT
// PouchDB.defaults({adapter: 'memory'}): that forces memory for every name, URLs included, and
// the replicator then "replicates" into a local memory database named after the remote URL
// (DESIGN §8).
PouchDB.plugin(memory).plugin(httpAdapter).plugin(replication).plugin(mapreduce);

const app = express();
if (adminUser) {
  // express-pouchdb crashes (`db.info is not a function`) when a non-admin creates or deletes a
  // database once an admin exists; Apache CouchDB answers 401. Answer that before it gets there.
  const admin = `Basic ${Buffer.from(`${adminUser}:${adminPassword ?? ''}`).toString('base64')}`;
  app.use((req, res, next) => {
    const dbLevel = /^\/[^/_][^/]*\/?$/.test(req.path) && (req.method === 'PUT' || req.method === 'DELETE');
    if (!dbLevel || req.headers.authorization === admin) return next();
    res.status(401).json({ error: 'unauthorized', reason: 'You are not a server admin.' });
  });
}
const couch = expressPouchDB(PouchDB, {
  inMemoryConfig: true,
  logPath: path.join(workdir, 'log.txt'),
});
app.use('/', couch);

if (adminUser) {
  // Ends the "admin party": requests with a wrong password get 401, as from Apache CouchDB.
  couch.couchConfig.set('admins', adminUser, adminPassword ?? '', () => undefined);
}

const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
server.on('error', (err) => {
  process.stderr.write(`couch-server-child: ${err.stack ?? err}\n`);
  process.exit(1);
});
// Large _bulk_docs bodies and long _changes feeds: no request timeout on loopback.
server.requestTimeout = 0;
server.headersTimeout = 0;

// pouchdb-replicator 4.2 does `replication.then(onComplete); replication.catch(onError)`: when a
// replication fails, the promise derived by `then` rejects with no handler, and Node (15+)
// would kill the whole server for it. The failure itself is handled (the document goes to
// `_replication_state: "error"`); only that orphan rejection is dropped here.
process.on('unhandledRejection', (err) => {
  process.stderr.write(`couch-server-child: unhandled rejection (ignored): ${err && err.message ? err.message : err}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
