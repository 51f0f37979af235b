const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/**
 * Cuts the elements out of a CouchDB answer as it streams in: the rows of
 * `{"total_rows":…,"rows":[ROW,ROW,…]}` (`_all_docs`) or the results of `{"results":[…]}`
 * (`_bulk_get`), i.e. the objects of the first array directly inside the top-level object. Each
 * element comes out as its JSON text, to be parsed alone, so a page of documents is never held
 * whole: memory stays at one element (one document with its attachments) plus one chunk.
 *
 * Only structure is tracked (depth, strings, escapes); the text is not validated here, JSON.parse
 * does that for each element. Bytes are scanned, not characters: `"`, `\`, braces and brackets are
 * ASCII and never occur inside a multi-byte UTF-8 sequence, and an element split across chunks is
 * joined as bytes before it is decoded.
 */
export class ArrayElementSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** 0: before the array, 1: inside it, 2: after it (the rest is ignored). */
  private phase = 0;
  /** Pieces of the element being read, from earlier chunks. */
  private parts: Buffer[] = [];
  private inElement = false;

  /** Feeds a chunk; returns the elements it completed, as JSON text. */
  push(chunk: Uint8Array): string[] {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: string[] = [];
    let start = this.inElement ? 0 : -1;
    let i = 0;
    const n = buf.length;
    // Next quote and backslash from the scan position, found with memchr rather than byte by
    // byte: long strings (base64 attachments) are skipped at memory speed.
    let nextQuote = -2;
    let nextBackslash = -2;
    while (i < n) {
      if (this.phase === 2) break;
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i += 1;
          continue;
        }
        if (nextQuote !== -1 && nextQuote < i) nextQuote = buf.indexOf(QUOTE, i);
        if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = buf.indexOf(BACKSLASH, i);
        if (nextBackslash !== -1 && (nextQuote === -1 || nextBackslash < nextQuote)) {
          // An escape: skip the backslash and the character it escapes (maybe in the next chunk).
          if (nextBackslash + 1 < n) i = nextBackslash + 2;
          else {
            this.escaped = true;
            i = n;
          }
          continue;
        }
        if (nextQuote === -1) {
          i = n;
          continue;
        }
        this.inString = false;
        i = nextQuote + 1;
        continue;
      }
      const b = buf[i]!;
      if (b === QUOTE) {
        this.inString = true;
      } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        if (this.phase === 0 && this.depth === 1 && b === OPEN_ARRAY) this.phase = 1;
        else if (this.phase === 1 && this.depth === 2 && !this.inElement) {
          this.inElement = true;
          start = i;
        }
        this.depth += 1;
      } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
        this.depth -= 1;
        if (this.phase === 1 && this.inElement && this.depth === 2) {
          const piece = buf.subarray(start, i + 1);
          out.push(this.parts.length ? Buffer.concat([...this.parts, piece]).toString('utf8') : piece.toString('utf8'));
          this.parts = [];
          this.inElement = false;
          start = -1;
        } else if (this.phase === 1 && this.depth === 1) {
          this.phase = 2;
        }
      }
      i += 1;
    }
    if (this.inElement && start >= 0) this.parts.push(buf.subarray(start));
    return out;
  }

  /** True once the array was read to its end (an answer cut short leaves it false). */
  get complete(): boolean {
    return this.phase === 2;
  }
}
