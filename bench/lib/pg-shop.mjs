// The six-table shop database of the PostgreSQL bench (issue 9): realistic, not trivially
// compressible rows, spread over tables of different sizes so that `pg_dump -j N` has work to
// share out (no table is more than about a third of the dump), grown batch by batch until
// pg_database_size() reaches the target.
//
//   customers    names, e-mails, cities, a numeric balance, a text[] of tags, a jsonb profile
//   products     SKU, name, category, price, stock, a prose description, jsonb attributes
//   orders       ~4 per customer: status, currency, total, timestamps, jsonb lines, a note
//   reviews      ~3 per customer: product, rating, title and a prose body
//   events       ~14 per customer: access-log-like rows (inet, user agent, duration, jsonb
//                payload with a random session id, a free-text message)
//   attachments  ~1 per 10 orders: a 1–12 KiB bytea of random bytes (JPEGs and PDFs:
//                incompressible)
//
// Free text is drawn from a 6,000-word pseudo-vocabulary with a Zipf-like skew, so it compresses
// roughly like prose (gzip about 2.5–3×). Seeded: the same target gives the same rows. Rows are
// made in Node and loaded with COPY … FROM STDIN through psql; two loaders run at once (the
// machine has two cores and psql/the server take one of them).

import { Gen as TextGen, FIRST, LAST, CITIES, COUNTRIES, DOMAINS, STATUSES, CURRENCIES, KINDS, METHODS, PATHS, AGENTS, MIMES, TAGS, ts, money } from './gen-text.mjs';

const SCHEMA = `
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, country text, city text,
  created_at timestamptz NOT NULL, balance numeric(12,2), tags text[], profile jsonb);
CREATE TABLE products (id bigint PRIMARY KEY, sku text NOT NULL, name text NOT NULL, category text NOT NULL,
  price numeric(10,2) NOT NULL, stock integer NOT NULL, description text, attributes jsonb);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, currency text NOT NULL,
  total numeric(12,2) NOT NULL, created_at timestamptz NOT NULL, shipped_at timestamptz, lines jsonb NOT NULL, note text);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE reviews (id bigint PRIMARY KEY, product_id bigint NOT NULL, customer_id bigint NOT NULL, rating smallint NOT NULL,
  title text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL, helpful integer NOT NULL);
CREATE TABLE events (id bigint PRIMARY KEY, customer_id bigint, occurred_at timestamptz NOT NULL, kind text NOT NULL,
  ip inet, user_agent text, duration_ms integer, payload jsonb, message text);
CREATE INDEX events_customer_time ON events (customer_id, occurred_at);
CREATE TABLE attachments (id bigint PRIMARY KEY, order_id bigint NOT NULL, filename text NOT NULL, mime text NOT NULL,
  created_at timestamptz NOT NULL, body bytea NOT NULL);
`;

export const TABLES = ['customers', 'products', 'orders', 'reviews', 'events', 'attachments'];

/** mulberry32: a small, fast, seeded PRNG (floats in [0, 1)). */

/** One vocabulary for every loader; the seed picks the draws. */
class Gen extends TextGen {
  constructor(seed) {
    super(seed, 0x5eed);
  }
}
const CATEGORIES = 'books music garden kitchen toys sports outdoor office beauty health shoes clothing jewelry tools auto pets baby games electronics furniture'.split(' ');
const COLORS = 'black white red blue green yellow grey brown navy beige pink purple'.split(' ');

const PRODUCTS_PER_CUSTOMER = 1.2;

/** COPY text format: backslash, tab and newline escaped (prose has none of the latter two). */
const esc = (s) => s.replace(/\\/g, '\\\\');

/**
 * Rows for customers [from, to), with their orders, reviews, events and attachments, and the
 * products [ceil(from × 1.2), ceil(to × 1.2)). Ids of the child rows derive from the customer id
 * (10 orders, 10 reviews, 50 events slots per customer) so that batches can load in parallel.
 */
async function writeBatch(g, from, to, write) {
  const rows = Object.fromEntries(TABLES.map((t) => [t, []]));
  let pending = 0;
  const flush = async (force) => {
    if (!force && pending < 2000) return;
    pending = 0;
    for (const t of TABLES) {
      if (!rows[t].length) continue;
      await write(`COPY ${t} FROM STDIN;\n${rows[t].join('')}\\.\n`);
      rows[t].length = 0;
    }
  };
  const productsBefore = Math.ceil(from * PRODUCTS_PER_CUSTOMER);
  for (let p = productsBefore; p < Math.ceil(to * PRODUCTS_PER_CUSTOMER); p++) {
    const attributes = { color: g.pick(COLORS), weight_g: 50 + g.int(5000), sizes: Array.from({ length: g.int(4) }, () => g.pick(['XS', 'S', 'M', 'L', 'XL'])), origin: g.pick(COUNTRIES) };
    rows.products.push(
      `${p}\tSKU-${p.toString().padStart(8, '0')}\t${g.word()} ${g.word()} ${g.word()}\t${g.pick(CATEGORIES)}\t${money(1 + g.r() * 400)}\t${g.int(2000)}\t${g.paragraph(2 + g.int(6))}\t${JSON.stringify(attributes)}\n`,
    );
    pending++;
  }
  const products = Math.ceil(to * PRODUCTS_PER_CUSTOMER);
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
    rows.customers.push(
      `${c}\t${first} ${last}\t${first.toLowerCase()}.${last.toLowerCase()}${g.int(1000)}@${g.pick(DOMAINS)}\t${g.pick(COUNTRIES)}\t${city}\t${ts(since)}\t${money(g.r() * 5000 - 500)}\t{${tags.join(',')}}\t${esc(JSON.stringify(profile))}\n`,
    );
    const nOrders = 1 + g.int(7);
    for (let o = 0; o < nOrders; o++) {
      const oid = c * 10 + o;
      const at = g.time(since);
      const lines = Array.from({ length: 1 + g.int(5) }, () => ({ sku: `SKU-${g.int(products).toString().padStart(8, '0')}`, qty: 1 + g.int(4), price: +(g.r() * 200).toFixed(2), name: `${g.word()} ${g.word()}` }));
      const total = lines.reduce((s, l) => s + l.qty * l.price, 0);
      const status = g.pick(STATUSES);
      const shipped = status === 'shipped' || status === 'delivered' ? ts(at + g.int(5 * 86_400_000)) : '\\N';
      const note = g.r() < 0.3 ? g.sentence(5, 40) : '\\N';
      rows.orders.push(`${oid}\t${c}\t${status}\t${g.pick(CURRENCIES)}\t${money(total)}\t${ts(at)}\t${shipped}\t${esc(JSON.stringify(lines))}\t${note}\n`);
      if (g.r() < 0.1) {
        const [mime, ext] = g.pick(MIMES);
        const bytes = 1024 + g.int(11 * 1024);
        rows.attachments.push(`${oid}\t${oid}\t${g.word()}-${g.word()}-${oid}.${ext}\t${mime}\t${ts(at)}\t\\\\x${g.hex(bytes)}\n`);
      }
    }
    const nReviews = g.int(7);
    for (let v = 0; v < nReviews; v++) {
      rows.reviews.push(`${c * 10 + v}\t${g.int(products)}\t${c}\t${1 + g.int(5)}\t${g.sentence(2, 8)}\t${g.paragraph(1 + g.int(5))}\t${ts(g.time(since))}\t${g.int(50)}\n`);
    }
    const nEvents = g.int(29);
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
      rows.events.push(
        `${c * 50 + e}\t${c}\t${ts(at)}\t${g.pick(KINDS)}\t${10 + g.int(240)}.${g.int(256)}.${g.int(256)}.${1 + g.int(254)}\t${g.pick(AGENTS)}\t${g.int(3000)}\t${esc(JSON.stringify(payload))}\t${g.r() < 0.6 ? g.sentence(4, 25) : '\\N'}\n`,
      );
    }
    pending += 1 + nOrders + nReviews + nEvents;
    await flush(false);
  }
  await flush(true);
}

function loadBatch(server, db, g, from, to) {
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
    writeBatch(g, from, to, write).then(
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
 * VACUUM (FREEZE, ANALYZE) and CHECKPOINT, so that the first dump does not rewrite pages (hint
 * bits). Returns { ms, bytes, rows: {table: count}, table_bytes: {table: bytes}, batches }.
 */
export async function generateShop(server, db, targetBytes, { seed = 42, log = () => {} } = {}) {
  const t0 = process.hrtime.bigint();
  await server.psql(`CREATE DATABASE "${db}"`);
  await server.psql(SCHEMA, db);
  const sizeOf = async () => Number(await server.psql(`SELECT pg_database_size(current_database())`, db));
  let size = await sizeOf();
  const empty = size;
  let next = 1;
  let perCustomer = 15_000; // bytes on disk per customer, every table and index: a first guess, then measured
  let batches = 0;
  while (size < targetBytes) {
    const want = Math.ceil(((targetBytes - size) / perCustomer) * 1.01) + 10;
    // The first round is small: it measures the bytes per customer the next ones are sized by.
    const n = Math.max(100, Math.min(want, batches === 0 ? 2000 : Math.ceil((96 * 2 ** 20) / perCustomer)));
    const half = Math.ceil(n / 2);
    await Promise.all([loadBatch(server, db, new Gen(seed + next), next, next + half), loadBatch(server, db, new Gen(seed + next + half), next + half, next + n)]);
    next += n;
    batches++;
    size = await sizeOf();
    perCustomer = (size - empty) / (next - 1);
    log(`  ${db}: ${(size / 2 ** 20).toFixed(0)} MiB of ${(targetBytes / 2 ** 20).toFixed(0)} MiB (${next - 1} customers)`);
  }
  await server.psql('VACUUM (FREEZE, ANALYZE)', db);
  await server.psql('CHECKPOINT', db);
  const rows = JSON.parse(await server.psql(`SELECT json_build_object(${TABLES.map((t) => `'${t}', (SELECT count(*) FROM ${t})`).join(', ')})`, db));
  const tableBytes = JSON.parse(await server.psql(`SELECT json_object_agg(relname, pg_total_relation_size(oid)) FROM pg_class WHERE relname IN (${TABLES.map((t) => `'${t}'`).join(', ')})`, db));
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: await sizeOf(), rows, table_bytes: tableBytes, batches };
}
