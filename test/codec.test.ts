import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { artifactSuffix, CodecError, decodeStreams, encodeStreams, ENCRYPTION_FORMAT, isLegacyManifest, resolveCompression, type StorageCompression } from '../src/storage/codec/index.js';
import { CHUNK_SIZE, HEADER_SIZE, TAG_SIZE } from '../src/storage/codec/format.js';

const MiB = 1024 * 1024;
const KEY = 'correct horse battery staple';

/** Feeds `data` in odd-sized pieces, so chunk boundaries never line up with writes. */
function source(data: Buffer, piece = 77_777): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= data.length) return void this.push(null);
      this.push(data.subarray(off, off + piece));
      off += piece;
    },
  });
}

async function run(data: Buffer, streams: Transform[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline([source(data), ...streams, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) })]);
  return Buffer.concat(out);
}

/** Decodes, returning what came out before a failure and the failure. */
async function tryDecode(data: Buffer, key = KEY, compression: StorageCompression = 'none'): Promise<{ out: Buffer; error?: CodecError }> {
  const out: Buffer[] = [];
  try {
    await pipeline([source(data), ...decodeStreams({ compression, encryption: ENCRYPTION_FORMAT }, key, { subject: { storage: 'vault', id: 'abc123def456' } }), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) })]);
    return { out: Buffer.concat(out) };
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    return { out: Buffer.concat(out), error: err };
  }
}

const encrypt = (data: Buffer) => run(data, encodeStreams({ compression: 'none', key: KEY }));

/** Splits an encrypted artifact into its header and its chunks (length word + ciphertext + tag each). */
function split(enc: Buffer): { header: Buffer; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  let off = HEADER_SIZE;
  while (off < enc.length) {
    const n = enc.readUInt32BE(off) & 0x7fffffff;
    chunks.push(enc.subarray(off, off + 4 + n + TAG_SIZE));
    off += 4 + n + TAG_SIZE;
  }
  return { header: enc.subarray(0, HEADER_SIZE), chunks };
}

describe('encryption round trips', () => {
  for (const size of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12_345]) {
    it(`${size} bytes`, async () => {
      const data = randomBytes(size);
      const enc = await encrypt(data);
      const chunks = Math.max(1, Math.ceil(size / CHUNK_SIZE));
      expect(enc.length).toBe(HEADER_SIZE + size + chunks * (4 + TAG_SIZE));
      expect(enc.subarray(0, 8).toString('latin1')).toBe('BKPENC1\n');
      const { chunks: parts } = split(enc);
      expect(parts).toHaveLength(chunks);
      // Only the last chunk carries the final flag.
      expect(parts.map((p) => p.readUInt32BE(0) >= 0x80000000)).toEqual(parts.map((_, i) => i === chunks - 1));
      const { out, error } = await tryDecode(enc);
      expect(error).toBeUndefined();
      expect(out.equals(data)).toBe(true);
    });
  }

  it('two encryptions of the same data differ (random salt and nonce prefix) and neither holds the plaintext', async () => {
    const data = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(1000));
    const [a, b] = [await encrypt(data), await encrypt(data)];
    expect(a.equals(b)).toBe(false);
    expect(a.includes('quick brown fox')).toBe(false);
    expect(a.includes(KEY)).toBe(false);
  });

  it('150 MB through encrypt and decrypt in bounded memory, with a slow consumer', async () => {
    const total = 150 * 1000 * 1000;
    const inHash = createHash('sha256');
    const outHash = createHash('sha256');
    let produced = 0;
    const src = new Readable({
      read() {
        if (produced >= total) return void this.push(null);
        const piece = randomBytes(Math.min(256 * 1024, total - produced));
        produced += piece.length;
        inHash.update(piece);
        this.push(piece);
      },
    });
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    let received = 0;
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(c: Buffer, _e, cb) {
        outHash.update(c);
        received += c.length;
        peak = Math.max(peak, process.memoryUsage().rss);
        setImmediate(cb); // a consumer slower than the producer: backpressure must hold the rest back
      },
    });
    await pipeline([src, ...encodeStreams({ compression: 'none', key: KEY }), ...decodeStreams({ compression: 'none', encryption: ENCRYPTION_FORMAT }, KEY), sink]);
    expect(received).toBe(total);
    expect(outHash.digest('hex')).toBe(inHash.digest('hex'));
    // Everything buffered at once would be 150 MB at least. A few chunks are ~10 MB, and scrypt
    // takes 32 MiB for each of the two key derivations while it runs.
    expect(peak - base).toBeLessThan(100 * MiB);
  });
});

describe('damage is detected, never passed on', () => {
  let enc: Buffer;
  let data: Buffer;
  const setup = async () => {
    if (enc) return;
    data = randomBytes(3 * CHUNK_SIZE + 1000); // chunks 0, 1, 2 full, chunk 3 final
    enc = await encrypt(data);
  };

  it('a wrong key is reported as such, before any data', async () => {
    await setup();
    const { out, error } = await tryDecode(enc, 'not the key');
    expect(error?.problem).toBe('wrong_key');
    expect(error?.message).toBe('storage vault: wrong encryption key for backup abc123def456');
    expect(out.length).toBe(0);
  });

  it('truncation at a chunk boundary (the final chunk missing)', async () => {
    await setup();
    const { header, chunks } = split(enc);
    const cut = Buffer.concat([header, ...chunks.slice(0, 3)]);
    const { out, error } = await tryDecode(cut);
    expect(error?.problem).toBe('truncated');
    expect(error?.message).toMatch(/^storage vault: backup abc123def456 is truncated: it ends after chunk 2, without the final chunk/);
    expect(out.length).toBe(3 * CHUNK_SIZE); // what was authenticated came out; the caller must not trust a partial result
  });

  it('truncation in the middle of a chunk, inside the header, and after the header', async () => {
    await setup();
    const mid = await tryDecode(enc.subarray(0, HEADER_SIZE + CHUNK_SIZE + 500_000));
    expect(mid.error?.message).toMatch(/is truncated: it ends inside chunk 1 /);
    expect(mid.out.length).toBe(CHUNK_SIZE);
    expect((await tryDecode(enc.subarray(0, 20))).error?.message).toMatch(/is truncated: it ends inside its 50-byte header/);
    expect((await tryDecode(enc.subarray(0, HEADER_SIZE))).error?.message).toMatch(/is truncated: it ends after its header, before the first chunk/);
    expect((await tryDecode(Buffer.alloc(0))).error?.problem).toBe('truncated');
  });

  it('one flipped byte in a chunk names the chunk, and nothing of that chunk comes out', async () => {
    await setup();
    const bad = Buffer.from(enc);
    bad[HEADER_SIZE + (4 + CHUNK_SIZE + TAG_SIZE) + 4 + 1234]! ^= 0x01; // inside chunk 1's ciphertext
    const { out, error } = await tryDecode(bad);
    expect(error?.problem).toBe('corrupt');
    expect(error?.message).toMatch(/^storage vault: backup abc123def456 was tampered with or is corrupt \(chunk 1 at byte \d+\)$/);
    expect(out.equals(data.subarray(0, CHUNK_SIZE))).toBe(true);
  });

  it('a flipped tag byte, length word or final flag fails too', async () => {
    await setup();
    const tag = Buffer.from(enc);
    tag[enc.length - 1]! ^= 0x80;
    expect((await tryDecode(tag)).error?.message).toMatch(/tampered with or is corrupt \(chunk 3/);
    const len = Buffer.from(enc);
    len[HEADER_SIZE + 3]! ^= 0x01; // chunk 0 now claims one byte more or less
    expect((await tryDecode(len)).error?.problem).toBe('corrupt');
    const flag = Buffer.from(enc);
    flag[HEADER_SIZE]! ^= 0x80; // chunk 0 claims to be final
    expect((await tryDecode(flag)).error?.message).toMatch(/tampered with or is corrupt \(chunk 0/);
    const prefix = Buffer.from(enc);
    prefix[30]! ^= 0x01; // nonce prefix
    expect((await tryDecode(prefix)).error?.message).toMatch(/tampered with or is corrupt \(chunk 0/);
  });

  it('two chunks swapped', async () => {
    await setup();
    const { header, chunks } = split(enc);
    const swapped = Buffer.concat([header, chunks[1]!, chunks[0]!, chunks[2]!, chunks[3]!]);
    const { out, error } = await tryDecode(swapped);
    expect(error?.message).toMatch(/tampered with or is corrupt \(chunk 0 /);
    expect(out.length).toBe(0);
  });

  it('a duplicated chunk, and a duplicated final chunk', async () => {
    await setup();
    const { header, chunks } = split(enc);
    const dup = await tryDecode(Buffer.concat([header, chunks[0]!, chunks[0]!, chunks[1]!, chunks[2]!, chunks[3]!]));
    expect(dup.error?.message).toMatch(/tampered with or is corrupt \(chunk 1 /);
    const tail = await tryDecode(Buffer.concat([enc, chunks[3]!]));
    expect(tail.error?.message).toMatch(/tampered with or is corrupt \(\d+ unexpected bytes after the final chunk 3\)/);
  });

  it('an artifact that is not encrypted, and an unknown format version', async () => {
    expect((await tryDecode(Buffer.from('PGDMP and the rest of a dump, not encrypted at all........................'))).error?.message).toMatch(/does not start with the bkp encryption header/);
    const v2 = Buffer.from(await encrypt(Buffer.from('x')));
    v2[8] = 2;
    expect((await tryDecode(v2)).error?.message).toMatch(/encryption format version 2 is not supported by this bkp/);
  });
});

describe('compression', () => {
  const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i}: some repetitive backup content\n`).join(''));

  for (const compression of ['gzip', 'zstd', 'none'] as const) {
    it(`${compression}: round trip, alone and under encryption`, async () => {
      const plain = await run(text, encodeStreams({ compression }));
      if (compression === 'gzip') expect(plain.subarray(0, 2).toString('hex')).toBe('1f8b');
      if (compression === 'zstd') expect(plain.subarray(0, 4).toString('hex')).toBe('28b52ffd');
      if (compression !== 'none') expect(plain.length).toBeLessThan(text.length / 5);
      expect((await run(plain, decodeStreams({ compression, encryption: 'none' }))).equals(text)).toBe(true);
      const enc = await run(text, encodeStreams({ compression, key: KEY }));
      expect(enc.includes('repetitive backup')).toBe(false);
      const { out, error } = await tryDecode(enc, KEY, compression);
      expect(error).toBeUndefined();
      expect(out.equals(text)).toBe(true);
    });
  }

  it('zstd and gzip of 0 bytes', async () => {
    for (const compression of ['gzip', 'zstd'] as const) {
      const c = await run(Buffer.alloc(0), encodeStreams({ compression }));
      expect((await run(c, decodeStreams({ compression, encryption: 'none' }))).length).toBe(0);
    }
  });

  it('zstd of 20 MB of random data keeps up through the child process (backpressure both ways)', async () => {
    const data = randomBytes(20 * MiB);
    const c = await run(data, encodeStreams({ compression: 'zstd' }));
    expect(createHash('sha256').update(await run(c, decodeStreams({ compression: 'zstd', encryption: 'none' }))).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('zstd missing: a clear error naming what to install', async () => {
    await expect(run(text, encodeStreams({ compression: 'zstd', zstdPath: '/nonexistent/zstd' }))).rejects.toThrow(/needs the zstd program, which was not found \(\/nonexistent\/zstd\): install zstd/);
    const c = await run(text, encodeStreams({ compression: 'zstd' }));
    await expect(run(c, decodeStreams({ compression: 'zstd', encryption: 'none' }, undefined, { zstdPath: '/nonexistent/zstd' }))).rejects.toThrow(/install zstd/);
  });

  it('corrupt zstd and truncated gzip fail', async () => {
    const z = await run(text, encodeStreams({ compression: 'zstd' }));
    await expect(run(z.subarray(0, z.length - 100), decodeStreams({ compression: 'zstd', encryption: 'none' }))).rejects.toThrow(/zstd decompression failed \(exit 1/);
    const g = await run(text, encodeStreams({ compression: 'gzip' }));
    await expect(run(g.subarray(0, g.length - 100), decodeStreams({ compression: 'gzip', encryption: 'none' }))).rejects.toThrow(/unexpected end of file/);
  });
});

describe('options', () => {
  it('default compression: none for engines that compress, gzip otherwise; explicit wins', () => {
    expect(resolveCompression(undefined, 'gzip')).toBe('none');
    expect(resolveCompression(undefined, 'none')).toBe('gzip');
    expect(resolveCompression('zstd', 'gzip')).toBe('zstd');
    expect(resolveCompression('none', 'none')).toBe('none');
  });

  it('artifact suffixes say what the file is', () => {
    expect(artifactSuffix({ compression: 'zstd', key: 'k' })).toBe('.zst.enc');
    expect(artifactSuffix({ compression: 'gzip' })).toBe('.gz');
    expect(artifactSuffix({ compression: 'none' })).toBe('');
    expect(artifactSuffix({ compression: 'none', key: 'k' })).toBe('.enc');
  });

  it('an encrypted manifest without a key is a clear error; unknown formats are refused', () => {
    expect(() => decodeStreams({ compression: 'none', encryption: ENCRYPTION_FORMAT }, undefined, { subject: { storage: 'vault', id: 'abc' } })).toThrow(
      /^storage vault: backup abc is encrypted \(aes-256-gcm-chunked\/1\) but storage vault has no encryption key in the policy/,
    );
    expect(() => decodeStreams({ compression: 'none', encryption: 'aes-512-magic/9' }, KEY)).toThrow(/which this bkp does not read/);
    expect(() => decodeStreams({ compression: 'lz4', encryption: 'none' })).toThrow(/not one bkp writes/);
  });

  it('manifests from before storage-level encoding are read as the engine wrote them', () => {
    const legacy = { format: 'bkp-manifest/1' as const, compression: 'gzip' as const, encryption: 'none' };
    expect(isLegacyManifest(legacy)).toBe(true);
    expect(decodeStreams(legacy)).toEqual([]);
    expect(isLegacyManifest({ ...legacy, content_sha256: 'ab' })).toBe(false);
    expect(decodeStreams({ compression: 'gzip', encryption: 'none' })).toHaveLength(1);
  });
});
