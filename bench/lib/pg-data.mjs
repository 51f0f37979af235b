// A generated shop database for the PostgreSQL bench: four tables of realistic, not trivially
// compressible data, grown batch by batch until pg_database_size() reaches the target.
//
//   customers    names, e-mails, cities, a numeric balance, a text[] of tags, a jsonb profile
//                (a free-text bio, preferences, addresses)
//   orders       ~4 per customer: status, currency, numeric total, timestamps, jsonb order lines,
//                an optional free-text note
//   events       ~24 per customer: an access-log-like row (inet, user agent, duration) with a jsonb
//                payload (path, status, a random session id) and a free-text message
//   attachments  ~1 per 10 orders: a file name, a MIME type and a 1–12 KiB bytea of random bytes
//                (like the JPEGs and PDFs a real shop stores: incompressible)
//
// Free text is drawn from a 6,000-word pseudo-vocabulary with a Zipf-like skew, so it compresses
// roughly like prose (gzip about 2.5–3×), not like repeated filler. The generator is seeded: the
// same target gives the same rows. Rows are produced in Node and loaded with COPY … FROM STDIN
// through psql (one psql per batch), primary keys and two secondary indexes built as it goes.

import { Gen as TextGen, FIRST, LAST, CITIES, COUNTRIES, DOMAINS, STATUSES, CURRENCIES, KINDS, METHODS, PATHS, AGENTS, MIMES, TAGS, ts, money } from './gen-text.mjs';

const SCHEMA = `
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, country text, city text,
  created_at timestamptz NOT NULL, balance numeric(12,2), tags text[], profile jsonb);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, currency text NOT NULL,
  total numeric(12,2) NOT NULL, created_at timestamptz NOT NULL, shipped_at timestamptz, lines jsonb NOT NULL, note text);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE events (id bigint PRIMARY KEY, customer_id bigint, occurred_at timestamptz NOT NULL, kind text NOT NULL,
  ip inet, user_agent text, duration_ms integer, payload jsonb, message text);
CREATE INDEX events_customer_time ON events (customer_id, occurred_at);
CREATE TABLE attachments (id bigint PRIMARY KEY, order_id bigint NOT NULL, filename text NOT NULL, mime text NOT NULL,
  created_at timestamptz NOT NULL, body bytea NOT NULL);
`;

/** mulberry32: a small, fast, seeded PRNG (floats in [0, 1)). */

/** The vocabulary follows the seed here, as it always did: another seed, other words. */
class Gen extends TextGen {
  constructor(seed) {
    super(seed, seed ^ 0x5eed);
  }
}

/** One batch of customers [from, to): COPY text blocks for the four tables, pushed through `write`. */
async function writeBatch(g, ids, from, to, write) {
  const cust = [];
  const ord = [];
  const ev = [];
  const att = [];
  let flushed = 0;
  const flush = async (force) => {
    const size = cust.length + ord.length + ev.length + att.length;
    if (!force && size < 2000) return;
    flushed += size;
    // One COPY block per table per chunk keeps psql's input streaming.
    if (cust.length) await write(`COPY customers FROM STDIN;\n${cust.join('')}\\.\n`);
    if (ord.length) await write(`COPY orders FROM STDIN;\n${ord.join('')}\\.\n`);
    if (ev.length) await write(`COPY events FROM STDIN;\n${ev.join('')}\\.\n`);
    if (att.length) await write(`COPY attachments FROM STDIN;\n${att.join('')}\\.\n`);
    cust.length = ord.length = ev.length = att.length = 0;
  };
  for (let c = from; c < to; c++) {
    const first = g.pick(FIRST);
    const last = g.pick(LAST);
    const since = g.time();
    const city = g.pick(CITIES);
    const profile = {
      bio: g.sentence(10, 60),
      phone: `+33 6 ${g.int(100).toString().padStart(2, '0')} ${g.int(100).toString().padStart(2, '0')} ${g.int(100).toString().padStart(2, '0')} ${g.int(100).toString().padStart(2, '0')}`,
      prefs: { newsletter: g.r() < 0.4, lang: g.pick(['fr', 'en', 'de', 'es']), theme: g.pick(['light', 'dark', 'auto']) },
      addresses: Array.from({ length: 1 + g.int(2) }, () => ({ street: `${1 + g.int(200)} rue ${g.word()}`, zip: String(10000 + g.int(89999)), city })),
    };
    const tags = Array.from({ length: g.int(4) }, () => g.pick(TAGS));
    cust.push(
      `${c}\t${first} ${last}\t${first.toLowerCase()}.${last.toLowerCase()}${g.int(1000)}@${g.pick(DOMAINS)}\t${g.pick(COUNTRIES)}\t${city}\t${ts(since)}\t${money(g.r() * 5000 - 500)}\t{${tags.join(',')}}\t${JSON.stringify(profile)}\n`,
    );
    const nOrders = 1 + g.int(7);
    for (let o = 0; o < nOrders; o++) {
      const oid = ++ids.order;
      const at = g.time(since);
      const lines = Array.from({ length: 1 + g.int(5) }, () => ({ sku: `SKU-${g.int(50000).toString().padStart(6, '0')}`, qty: 1 + g.int(4), price: +(g.r() * 200).toFixed(2), name: `${g.word()} ${g.word()}` }));
      const total = lines.reduce((s, l) => s + l.qty * l.price, 0);
      const status = g.pick(STATUSES);
      const shipped = status === 'shipped' || status === 'delivered' ? ts(at + g.int(5 * 86_400_000)) : '\\N';
      const note = g.r() < 0.3 ? g.sentence(5, 40) : '\\N';
      ord.push(`${oid}\t${c}\t${status}\t${g.pick(CURRENCIES)}\t${money(total)}\t${ts(at)}\t${shipped}\t${JSON.stringify(lines)}\t${note}\n`);
      if (g.r() < 0.1) {
        const [mime, ext] = g.pick(MIMES);
        const bytes = 1024 + g.int(11 * 1024);
        att.push(`${++ids.attachment}\t${oid}\t${g.word()}-${g.word()}-${oid}.${ext}\t${mime}\t${ts(at)}\t\\\\x${g.hex(bytes)}\n`);
      }
    }
    const nEvents = g.int(49);
    for (let e = 0; e < nEvents; e++) {
      const at = g.time(since);
      const p = g.pick(PATHS);
      const payload = {
        method: g.pick(METHODS),
        path: g.r() < 0.5 ? `${p}/${g.int(1_000_000)}` : p,
        status: g.r() < 0.93 ? 200 : g.pick([301, 400, 401, 404, 500, 503]),
        bytes: g.int(200_000),
        session: g.hex(8),
        ...(g.r() < 0.3 ? { query: `${g.word()} ${g.word()}` } : {}),
      };
      ev.push(
        `${++ids.event}\t${c}\t${ts(at)}\t${g.pick(KINDS)}\t${10 + g.int(240)}.${g.int(256)}.${g.int(256)}.${1 + g.int(254)}\t${g.pick(AGENTS)}\t${g.int(3000)}\t${JSON.stringify(payload)}\t${g.r() < 0.6 ? g.sentence(4, 25) : '\\N'}\n`,
      );
    }
    await flush(false);
  }
  await flush(true);
  return flushed;
}

function loadBatch(server, db, g, ids, from, to) {
  return new Promise((resolve, reject) => {
    const child = server.psqlStdin(db);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`psql COPY into ${db} failed (exit ${code}): ${stderr.slice(-2000)}`))));
    child.stdin.on('error', () => undefined); // the close handler reports
    const write = (s) =>
      new Promise((res) => {
        if (child.stdin.write(s)) res();
        else child.stdin.once('drain', res);
      });
    writeBatch(g, ids, from, to, write).then(
      () => child.stdin.end(),
      (err) => {
        child.kill();
        reject(err);
      },
    );
  });
}

/**
 * Creates database `db` on `server` and fills it until pg_database_size(db) >= targetBytes, then
 * VACUUM (FREEZE, ANALYZE) and CHECKPOINT, so the first dump does not rewrite pages (hint bits).
 * Returns { ms, bytes, rows: {customers, orders, events, attachments}, batches }.
 */
export async function generateDatabase(server, db, targetBytes, { seed = 42, log = () => {} } = {}) {
  const t0 = process.hrtime.bigint();
  await server.psql(`CREATE DATABASE "${db}"`);
  await server.psql(SCHEMA, db);
  const sizeOf = async () => Number(await server.psql(`SELECT pg_database_size(current_database())`, db));
  const g = new Gen(seed);
  const ids = { order: 0, event: 0, attachment: 0 };
  let size = await sizeOf();
  const empty = size;
  let next = 1;
  let perCustomer = 15_000; // bytes on disk per customer (all four tables, indexes): a first guess, then measured
  let batches = 0;
  while (size < targetBytes) {
    // At most ~64 MiB per batch; the last batch aims just past the target.
    // The first batch is small: it measures the bytes per customer the next ones are sized by.
    const want = Math.ceil(((targetBytes - size) / perCustomer) * 1.01) + 10;
    const n = Math.max(50, Math.min(want, batches === 0 ? 1000 : Math.ceil((64 * 2 ** 20) / perCustomer)));
    await loadBatch(server, db, g, ids, next, next + n);
    next += n;
    batches++;
    size = await sizeOf();
    perCustomer = (size - empty) / (next - 1);
    log(`  ${db}: ${(size / 2 ** 20).toFixed(0)} MiB of ${(targetBytes / 2 ** 20).toFixed(0)} MiB (${next - 1} customers)`);
  }
  await server.psql('VACUUM (FREEZE, ANALYZE)', db);
  await server.psql('CHECKPOINT', db);
  const rows = JSON.parse(
    await server.psql(
      `SELECT json_build_object('customers', (SELECT count(*) FROM customers), 'orders', (SELECT count(*) FROM orders), 'events', (SELECT count(*) FROM events), 'attachments', (SELECT count(*) FROM attachments))`,
      db,
    ),
  );
  const tables = JSON.parse(
    await server.psql(
      `SELECT json_object_agg(relname, pg_total_relation_size(oid)) FROM pg_class WHERE relname IN ('customers', 'orders', 'events', 'attachments')`,
      db,
    ),
  );
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: await sizeOf(), rows, table_bytes: tables, batches };
}
