import { gzipSync } from 'node:zlib';
import { Long, serialize, type Document } from 'bson';

/**
 * Writes mongodump archives for the stand-in mongodump to stream, following mongo-tools'
 * common/archive (spec.md, prelude.go, multiplexer.go): magic 0x8199e26d little-endian, a header
 * document, one metadata document per collection, a terminator, then each collection's documents
 * in segments (namespace header, documents, terminator) closed by an EOF header carrying the
 * CRC-64/ECMA of the documents. Written independently of bkp's reader (src/providers/mongodb/
 * archive.ts), so the tests check one against the other rather than against itself.
 */

const MAGIC = 0x8199e26d;
const TERMINATOR = Buffer.from([0xff, 0xff, 0xff, 0xff]);

// Go's crc64.MakeTable(crc64.ECMA): the reflected ECMA-182 polynomial, bit by bit in BigInt
// (slow, and plainly the textbook algorithm: fixtures are small).
const POLY = 0xc96c5795d7870f42n;
const MASK = 0xffffffffffffffffn;
export function crc64(data: Uint8Array, crc = 0n): bigint {
  let c = ~crc & MASK;
  for (const byte of data) {
    c ^= BigInt(byte);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ POLY : c >> 1n;
  }
  return ~c & MASK;
}

export interface ArchiveOptions {
  /** View name → the collection it reads: in the prelude, with an empty EOF block as mongodump writes. */
  views?: Record<string, string>;
  serverVersion?: string;
  toolVersion?: string;
  /** Documents per segment; segments of different collections are interleaved, as parallel dumps are. */
  segment?: number;
  /** Spoils the recorded CRC of this collection, for the corruption tests. */
  badCrc?: string;
}

export function buildArchive(db: string, collections: Record<string, Document[]>, opts: ArchiveOptions = {}): Buffer {
  const out: Buffer[] = [];
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(MAGIC, 0);
  out.push(magic);
  out.push(Buffer.from(serialize({ version: '0.1', server_version: opts.serverVersion ?? '7.0.14', tool_version: opts.toolVersion ?? '100.9.4', concurrent_collections: 4 })));
  const names = Object.keys(collections);
  const views = opts.views ?? {};
  for (const name of names) {
    const docs = collections[name]!;
    const metadata = JSON.stringify({ indexes: [{ v: { $numberInt: '2' }, key: { _id: { $numberInt: '1' } }, name: '_id_' }], uuid: '00000000000000000000000000000000', collectionName: name, type: 'collection' });
    out.push(Buffer.from(serialize({ db, collection: name, metadata, size: docs.reduce((n, d) => n + serialize(d).length, 0), type: 'collection' })));
  }
  for (const [name, on] of Object.entries(views)) {
    const metadata = JSON.stringify({ options: { viewOn: on, pipeline: [] }, indexes: [], collectionName: name, type: 'view' });
    out.push(Buffer.from(serialize({ db, collection: name, metadata, size: 0, type: 'view' })));
  }
  out.push(TERMINATOR);

  const per = opts.segment ?? 3;
  const crcs = new Map<string, bigint>(names.map((n) => [n, 0n]));
  const left = new Map<string, Document[]>(names.map((n) => [n, [...collections[n]!]]));
  const eof = (name: string) => {
    const crc = name === opts.badCrc ? crcs.get(name)! ^ 1n : crcs.get(name)!;
    out.push(Buffer.from(serialize({ db, collection: name, EOF: true, CRC: Long.fromBigInt(BigInt.asIntN(64, crc)) })), TERMINATOR);
  };
  // Round-robin segments until every collection is drained, then its EOF block.
  while ([...left.values()].some((d) => d.length > 0)) {
    for (const name of names) {
      const docs = left.get(name)!;
      if (docs.length === 0) continue;
      out.push(Buffer.from(serialize({ db, collection: name, EOF: false, CRC: Long.fromBigInt(0n) })));
      for (const doc of docs.splice(0, per)) {
        const b = Buffer.from(serialize(doc));
        crcs.set(name, crc64(b, crcs.get(name)!));
        out.push(b);
      }
      out.push(TERMINATOR);
      if (docs.length === 0) eof(name);
    }
  }
  for (const name of names) if (collections[name]!.length === 0) eof(name);
  for (const name of Object.keys(views)) {
    crcs.set(name, 0n);
    eof(name);
  }
  return Buffer.concat(out);
}

export function gzipArchive(db: string, collections: Record<string, Document[]>, opts: ArchiveOptions = {}): Buffer {
  return gzipSync(buildArchive(db, collections, opts));
}
