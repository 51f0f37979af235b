import { pipeline, Transform, Writable, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BSON } from 'mongodb';

/**
 * Reading mongodump's archive format (mongo-tools common/archive, spec.md there):
 *
 *   archive   = magic, header document, *collection-metadata document, terminator,
 *               *(namespace-header, +document, terminator | eof-header, terminator)
 *
 * The magic is 0x8199e26d little-endian; the terminator is 0xFFFFFFFF where a BSON length
 * would be. Collections are interleaved in segments; each ends with an EOF header carrying the
 * CRC-64 (ECMA-182 polynomial, reflected, as Go's hash/crc64 ECMA table) of all its documents'
 * bytes. Documents are counted and hashed, never decoded, so a scan costs little more than
 * gunzip, in constant memory.
 */
export const ARCHIVE_MAGIC = 0x8199e26d;
const TERMINATOR = -1;
/** The largest document the tools accept (their db.MaxBSONSize). */
const MAX_BSON = 16 * 1024 * 1024;

export class ArchiveError extends Error {}

/** A collection as the prelude names it. */
export interface PreludeEntry {
  db: string;
  collection: string;
  /** `collection`, `view`, `timeseries`; from the prelude's `type`, or its metadata for older tools. */
  type: string;
}

export interface NamespaceSummary {
  documents: number;
  /** BSON bytes of its documents. */
  bytes: number;
}

export interface ArchiveSummary {
  formatVersion?: string;
  serverVersion?: string;
  toolVersion?: string;
  prelude: PreludeEntry[];
  /** `db.collection` → documents, for every namespace closed by its EOF block (whose CRC matched). */
  namespaces: Map<string, NamespaceSummary>;
  /** Bytes of the uncompressed archive. */
  bytes: number;
}

// CRC-64/XZ (Go's crc64.ECMA table, init and final xor all ones) in two 32-bit halves (BigInt
// per byte is two orders of magnitude slower), eight bytes per step ("slicing-by-8": table k
// gives a byte's effect k bytes further on), which keeps the scan faster than gunzip.
const POLY_HI = 0xc96c5795;
const POLY_LO = 0xd7870f42;
const T_HI = new Uint32Array(8 * 256);
const T_LO = new Uint32Array(8 * 256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let k = 0; k < 8; k++) {
    const lsb = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (lsb) {
      hi = (hi ^ POLY_HI) >>> 0;
      lo = (lo ^ POLY_LO) >>> 0;
    }
  }
  T_HI[i] = hi;
  T_LO[i] = lo;
}
for (let t = 1; t < 8; t++) {
  for (let i = 0; i < 256; i++) {
    const hi = T_HI[(t - 1) * 256 + i]!;
    const lo = T_LO[(t - 1) * 256 + i]!;
    const idx = lo & 0xff;
    T_LO[t * 256 + i] = (((lo >>> 8) | (hi << 24)) ^ T_LO[idx]!) >>> 0;
    T_HI[t * 256 + i] = ((hi >>> 8) ^ T_HI[idx]!) >>> 0;
  }
}

/** A running CRC-64, kept inverted between updates as the algorithm wants. */
export class Crc64 {
  private hi = 0xffffffff;
  private lo = 0xffffffff;
  update(b: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    let i = 0;
    const end8 = b.length - (b.length % 8);
    for (; i < end8; i += 8) {
      lo ^= b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
      hi ^= b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24);
      const a0 = 7 * 256 + (lo & 0xff);
      const a1 = 6 * 256 + ((lo >>> 8) & 0xff);
      const a2 = 5 * 256 + ((lo >>> 16) & 0xff);
      const a3 = 4 * 256 + (lo >>> 24);
      const a4 = 3 * 256 + (hi & 0xff);
      const a5 = 2 * 256 + ((hi >>> 8) & 0xff);
      const a6 = 256 + ((hi >>> 16) & 0xff);
      const a7 = hi >>> 24;
      lo = T_LO[a0]! ^ T_LO[a1]! ^ T_LO[a2]! ^ T_LO[a3]! ^ T_LO[a4]! ^ T_LO[a5]! ^ T_LO[a6]! ^ T_LO[a7]!;
      hi = T_HI[a0]! ^ T_HI[a1]! ^ T_HI[a2]! ^ T_HI[a3]! ^ T_HI[a4]! ^ T_HI[a5]! ^ T_HI[a6]! ^ T_HI[a7]!;
    }
    for (; i < b.length; i++) {
      const idx = (lo ^ b[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ T_LO[idx]!;
      hi = (hi >>> 8) ^ T_HI[idx]!;
    }
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
    return this;
  }
  /** As the tools store it: Go's `int64(sum)`. */
  signed(): bigint {
    return BigInt.asIntN(64, (BigInt(~this.hi >>> 0) << 32n) | BigInt(~this.lo >>> 0));
  }
}

interface OpenNamespace extends NamespaceSummary {
  crc: Crc64;
}

type Where = 'header' | 'prelude' | 'between' | 'segment' | 'after-eof';

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function preludeType(doc: BSON.Document): string {
  const t = str(doc.type);
  if (t) return t;
  // Tools older than 100.7 did not write `type`: the metadata's options tell a view or time series.
  try {
    const meta = JSON.parse(str(doc.metadata) ?? '{}') as { options?: Record<string, unknown>; type?: string };
    if (meta.type) return meta.type;
    if (meta.options?.viewOn !== undefined) return 'view';
    if (meta.options?.timeseries !== undefined) return 'timeseries';
  } catch {
    // metadata that is not JSON says nothing about the type
  }
  return 'collection';
}

/**
 * A Writable that takes the uncompressed archive and checks its whole structure: the magic, the
 * prelude, every segment's BSON lengths and trailing zero, every namespace's EOF and CRC. It
 * fails (an error event) at the first problem; `summary` is complete after 'finish'.
 */
export class ArchiveScanner extends Writable {
  readonly summary: ArchiveSummary = { prelude: [], namespaces: new Map(), bytes: 0 };
  private where: Where | 'magic' = 'magic';
  /** Bytes being gathered: a 4-byte length, or a whole header document. */
  private parts: Buffer[] = [];
  private have = 0;
  private want = 4;
  /** Set while a header document (not a data document) is being gathered. */
  private docLength = 0;
  /** Bytes of the current data document still to come. */
  private remaining = 0;
  private current: OpenNamespace | undefined;
  private currentName = '';
  private readonly openNs = new Map<string, OpenNamespace>();
  private readonly finishedNs = new Set<string>();

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.feed(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.summary.bytes === 0) return cb(new ArchiveError('the archive is empty'));
    if (this.where === 'magic' || this.where === 'header' || this.where === 'prelude') return cb(new ArchiveError(`the archive ends inside its prelude, after ${this.summary.bytes} bytes`));
    if (this.where !== 'between' || this.have > 0 || this.docLength > 0 || this.remaining > 0) {
      return cb(new ArchiveError(`the archive is truncated: it ends inside a block of ${this.currentName || 'an unknown namespace'}, after ${this.summary.bytes} bytes`));
    }
    if (this.openNs.size > 0) return cb(new ArchiveError(`the archive is truncated: it ends before the end of ${[...this.openNs.keys()].join(', ')}`));
    cb();
  }

  private feed(chunk: Buffer): void {
    this.summary.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.remaining > 0) {
        // Data documents pass through: hashed and counted, never copied.
        const n = Math.min(this.remaining, chunk.length - off);
        const part = chunk.subarray(off, off + n);
        this.current!.crc.update(part);
        this.current!.bytes += n;
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) {
          if (part[part.length - 1] !== 0) throw new ArchiveError(`a document of ${this.currentName} does not end with a zero byte: the archive is corrupt`);
          this.current!.documents += 1;
        }
        continue;
      }
      const n = Math.min(this.want - this.have, chunk.length - off);
      this.parts.push(chunk.subarray(off, off + n));
      this.have += n;
      off += n;
      if (this.have === this.want) {
        const piece = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
        this.parts = [];
        this.have = 0;
        this.piece(piece);
      }
    }
  }

  /** A complete piece: the magic, a length (or terminator), or a whole header document. */
  private piece(b: Buffer): void {
    if (this.where === 'magic') {
      const magic = b.readUInt32LE(0);
      if (magic !== ARCHIVE_MAGIC) throw new ArchiveError(`not a mongodump archive: it starts with 0x${magic.toString(16).padStart(8, '0')}, not the magic number 0x${ARCHIVE_MAGIC.toString(16)}`);
      this.where = 'header';
      this.want = 4;
      return;
    }
    if (this.docLength > 0) {
      let doc: BSON.Document;
      try {
        doc = BSON.deserialize(b, { useBigInt64: true });
      } catch (err) {
        throw new ArchiveError(`a header at byte ${this.summary.bytes} is not valid BSON (${(err as Error).message}): the archive is corrupt`);
      }
      this.docLength = 0;
      this.want = 4;
      this.document(doc);
      return;
    }
    const length = b.readInt32LE(0);
    if (length === TERMINATOR) return this.terminator();
    if (length < 5 || length > MAX_BSON) throw new ArchiveError(`${length} at byte ${this.summary.bytes} is neither a BSON length nor a terminator: the archive is corrupt`);
    if (this.where === 'segment') {
      this.current!.crc.update(b);
      this.current!.bytes += 4;
      this.remaining = length - 4;
      return;
    }
    if (this.where === 'after-eof') throw new ArchiveError(`documents of ${this.currentName} follow its EOF block: the archive is corrupt`);
    // A header document: gather it whole (the 4 length bytes already read are part of it).
    this.docLength = length;
    this.parts = [b];
    this.have = 4;
    this.want = length;
  }

  private terminator(): void {
    switch (this.where) {
      case 'prelude':
        this.where = 'between';
        return;
      case 'segment':
      case 'after-eof':
        this.where = 'between';
        this.current = undefined;
        return;
      default:
        throw new ArchiveError(`a terminator where a header belongs, at byte ${this.summary.bytes}: the archive is corrupt`);
    }
  }

  private document(doc: BSON.Document): void {
    if (this.where === 'header') {
      this.summary.formatVersion = str(doc.version);
      this.summary.serverVersion = str(doc.server_version);
      this.summary.toolVersion = str(doc.tool_version);
      this.where = 'prelude';
      return;
    }
    if (this.where === 'prelude') {
      this.summary.prelude.push({ db: str(doc.db) ?? '', collection: str(doc.collection) ?? '', type: preludeType(doc) });
      return;
    }
    // 'between': a namespace header.
    const db = str(doc.db) ?? '';
    const collection = str(doc.collection);
    if (!collection) throw new ArchiveError('a block header without a collection: the archive is corrupt');
    const name = `${db}.${collection}`;
    if (this.finishedNs.has(name)) throw new ArchiveError(`${name} continues after its EOF block: the archive is corrupt`);
    let ns = this.openNs.get(name);
    if (!ns) {
      ns = { documents: 0, bytes: 0, crc: new Crc64() };
      this.openNs.set(name, ns);
    }
    this.current = ns;
    this.currentName = name;
    if (doc.EOF !== true) {
      this.where = 'segment';
      return;
    }
    const recorded = typeof doc.CRC === 'bigint' ? doc.CRC : typeof doc.CRC === 'number' ? BigInt(doc.CRC) : undefined;
    const actual = ns.crc.signed();
    if (recorded !== undefined && recorded !== actual) throw new ArchiveError(`the CRC of ${name} does not match its documents (${recorded} recorded, ${actual} read): the archive is corrupt`);
    this.openNs.delete(name);
    this.finishedNs.add(name);
    this.summary.namespaces.set(name, { documents: ns.documents, bytes: ns.bytes });
    this.where = 'after-eof';
  }
}

/** Reads a whole gzipped archive (a verify, a restore) and checks it. */
export function scanGzippedArchive(source: Readable): Promise<ArchiveSummary> {
  const scanner = new ArchiveScanner();
  return new Promise((resolve, reject) => {
    pipeline(source, createGunzip(), scanner, (err) => (err ? reject(describeScanError(err)) : resolve(scanner.summary)));
  });
}

function describeScanError(err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') return new ArchiveError(`the gzip stream is corrupt (${err.message}): not a mongodump --archive --gzip output`);
  if (code === 'ERR_STREAM_PREMATURE_CLOSE') return new ArchiveError('the gzip stream ends early: the archive is truncated');
  return err;
}

/**
 * Passes `source` through unchanged while a second reader gunzips and scans it, so a backup
 * checks the archive mongodump writes as it streams into storage. Backpressure holds: a chunk
 * goes on only once the scanner took it. The stream fails on a malformed archive, and it ends
 * only after `producer` (mongodump's exit) succeeded: a tool that failed half-way is reported
 * with its own message, not as the truncated archive it left.
 */
export function scanAlongside(source: Readable, producer: Promise<unknown>, what: string): { stream: Readable; summary: Promise<ArchiveSummary> } {
  const gunzip = createGunzip();
  const scanner = new ArchiveScanner();
  let ending = false;
  const scanned = new Promise<ArchiveSummary>((resolve, reject) => {
    pipeline(gunzip, scanner, (err) => (err ? reject(new ArchiveError(`${what}: ${describeScanError(err).message}`)) : resolve(scanner.summary)));
  });
  const tee = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      if (gunzip.write(chunk)) cb(null, chunk);
      else gunzip.once('drain', () => cb(null, chunk));
    },
    flush(cb) {
      ending = true;
      gunzip.end();
      Promise.allSettled([producer, scanned]).then(([p, s]) => cb(p.status === 'rejected' ? (p.reason as Error) : s.status === 'rejected' ? (s.reason as Error) : null));
    },
  });
  // Corruption in the middle: stop now (mongodump then stops on its closed stdout).
  scanned.catch((err: Error) => {
    if (!ending) tee.destroy(err);
  });
  // The consumer gave up (storage full…): stop the scanner too.
  tee.on('close', () => {
    if (!scanner.writableFinished) gunzip.destroy(new ArchiveError('the backup stream stopped before the archive ended'));
  });
  pipeline(source, tee, () => undefined);
  const summary = Promise.all([producer, scanned]).then(([, s]) => s);
  summary.catch(() => undefined);
  return { stream: tee, summary };
}
