import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/diagnostics.js';
import { normalizePrefix, parseS3Options, resolveS3Options } from '../src/storage/s3/options.js';
import { S3Storage, type S3Options } from '../src/storage/s3/s3-storage.js';
import { AlreadyExistsError } from '../src/storage/types.js';
import { startS3, type S3TestServer } from './helpers/s3-server.js';
import { generated, rejection, sha256Of } from './helpers/streams.js';

/**
 * S3 storage against a real S3-compatible server (s3rver, in process). Credentials reach the
 * storage the way they reach it in production: through the AWS default chain, here from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set for this test process.
 *
 * What s3rver cannot show: it accepts any secret for its one access key (SigV4 signatures are
 * not checked), so "wrong secret" cannot be tested, only "unknown access key"; it ignores
 * If-None-Match on PUT, so atomic locks are tested through a small proxy in front of it that
 * implements the header (or answers 501), as AWS and MinIO do.
 */

const AWS_VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_EC2_METADATA_DISABLED'];
const savedEnv = new Map<string, string | undefined>();
let s3: S3TestServer;
const opened: S3Storage[] = [];

beforeAll(async () => {
  for (const k of AWS_VARS) savedEnv.set(k, process.env[k]);
  s3 = await startS3();
  setCredentials(s3.accessKeyId, s3.secretAccessKey);
});
afterAll(async () => {
  for (const st of opened) st.close();
  await s3?.stop();
  for (const [k, v] of savedEnv) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function setCredentials(id: string, secret: string): void {
  for (const k of AWS_VARS) delete process.env[k];
  process.env.AWS_ACCESS_KEY_ID = id;
  process.env.AWS_SECRET_ACCESS_KEY = secret;
  // Nothing else of the chain may answer (a developer's ~/.aws, an instance role).
  process.env.AWS_CONFIG_FILE = '/nonexistent/bkp-test/config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/bkp-test/credentials';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
}

let counter = 0;
/** A storage on the test server under a prefix of its own, so tests do not see each other. */
function storage(opts: Partial<S3Options> = {}, warnings: string[] = []): S3Storage {
  const st = new S3Storage(`s3test`, { bucket: s3.bucket, endpoint: s3.endpoint, prefix: `t${++counter}/`, ...opts }, { warn: (m) => warnings.push(m) });
  opened.push(st);
  return st;
}

describe('S3 options', () => {
  it('normalises the prefix and applies defaults', () => {
    expect(normalizePrefix(undefined)).toBe('');
    expect(normalizePrefix('')).toBe('');
    expect(normalizePrefix('prod')).toBe('prod/');
    expect(normalizePrefix('/prod/')).toBe('prod/');
    expect(normalizePrefix('a/b')).toBe('a/b/');
    expect(resolveS3Options('x', { bucket: 'b' })).toEqual({ bucket: 'b', prefix: '', region: 'us-east-1', forcePathStyle: false });
    expect(resolveS3Options('x', { bucket: 'b', endpoint: 'http://user:pw@minio:9000/', region: 'eu-west-1', prefix: 'prod' })).toEqual({
      bucket: 'b',
      prefix: 'prod/',
      region: 'eu-west-1',
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
    });
    expect(resolveS3Options('x', { bucket: 'b', endpoint: 'https://s3.example', force_path_style: false }).forcePathStyle).toBe(false);
  });

  it('reads the policy options and rejects bad ones clearly', () => {
    expect(parseS3Options('bucket', { bucket: 'bkp', prefix: 'prod/', region: 'eu-west-1', endpoint: 'http://h:1', force_path_style: true })).toEqual({
      bucket: 'bkp',
      prefix: 'prod/',
      region: 'eu-west-1',
      endpoint: 'http://h:1',
      force_path_style: true,
    });
    expect(() => parseS3Options('bucket', { prefix: 'x' })).toThrow('storage "bucket": bucket is required');
    expect(() => parseS3Options('bucket', { bucket: 'b', force_path_style: 'yes' })).toThrow('force_path_style must be true or false');
    expect(() => new S3Storage('off', { bucket: 'b', endpoint: 'minio:9000' })).toThrow(/endpoint .* must start with http/);
    expect(() => new S3Storage('off', { bucket: 'b', endpoint: 'not a url' })).toThrow(/is not a URL/);
  });

  it('describes itself without credentials', () => {
    const st = new S3Storage('offsite', { bucket: 'bkp', prefix: 'prod', endpoint: 'http://key:secret@127.0.0.1:9000' });
    opened.push(st);
    expect(st.describe()).toBe('s3://bkp/prod/ at http://127.0.0.1:9000');
    const aws = new S3Storage('aws', { bucket: 'bkp' });
    opened.push(aws);
    expect(aws.describe()).toBe('s3://bkp/');
  });
});

describe('S3Storage on s3rver', () => {
  it('streams 200 MB in and out byte for byte, with bounded memory', async () => {
    const st = storage();
    // Warm up first (SDK, s3rver, the multipart path), so the baseline is the steady state.
    await st.put('warm-up.bin', generated(40 * 1024 * 1024).stream);
    await st.delete('warm-up.bin');
    const total = 200 * 1024 * 1024;
    const { stream, digest } = generated(total);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let progressCalls = 0;
    let lastProgress = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const { size } = await st.put('app/files/big.bin', stream, (bytes) => {
        progressCalls++;
        lastProgress = bytes;
        peak = Math.max(peak, process.memoryUsage().rss);
      });
      expect(size).toBe(total);
      expect(lastProgress).toBe(total);
      expect(progressCalls).toBeGreaterThan(1);
      // The sha256 of what was read back against what was sent: catches a server that stores
      // the aws-chunked framing (see the next test), a lost or reordered part.
      const back = await sha256Of(await st.get('app/files/big.bin'));
      expect(back.size).toBe(total);
      expect(back.hex).toBe(digest());
    } finally {
      clearInterval(sampler);
    }
    // The uploader holds about 3 parts of 16 MiB (s3rver runs in this process too): far less
    // than the 200 MB that went through. Measured: 35-50 MiB.
    expect(peak - baseline).toBeLessThan(120 * 1024 * 1024);
    const listed = await st.list('app/');
    expect(listed).toEqual([{ key: 'app/files/big.bin', size: total, modifiedAt: expect.any(Date) }]);
  }, 120_000);

  it('the sha256 check catches the corruption the checksum settings prevent', async () => {
    // The same server, a client with the SDK defaults, a streamed PutObject: s3rver stores the
    // aws-chunked framing as data. This is what `requestChecksumCalculation: 'WHEN_REQUIRED'`
    // in S3Storage prevents, and what the round-trip tests would catch.
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true });
    try {
      const data = Buffer.alloc(200_000, 7);
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'corruption-guard/raw.bin', Body: Readable.from([data]), ContentLength: data.length }));
      const res = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'corruption-guard/raw.bin' }));
      const stored = Buffer.from(await res.Body!.transformToByteArray());
      expect(createHash('sha256').update(stored).digest('hex')).not.toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      client.destroy();
    }
    const st = storage();
    const small = generated(200_000);
    expect(await st.put('raw.bin', small.stream)).toEqual({ size: 200_000 });
    expect((await sha256Of(await st.get('raw.bin'))).hex).toBe(small.digest());
  });

  it('round-trips small, empty and text objects', async () => {
    const st = storage();
    expect(await st.put('a/empty.bin', Readable.from([]))).toEqual({ size: 0 });
    expect((await sha256Of(await st.get('a/empty.bin'))).size).toBe(0);
    expect(await st.put('a/strings.txt', Readable.from(['héllo ', 'world']))).toEqual({ size: Buffer.byteLength('héllo world') });
    expect(await st.getText('a/strings.txt')).toBe('héllo world');
    await st.putText('a/m.manifest.json', '{"ok":true}\n');
    expect(await st.getText('a/m.manifest.json')).toBe('{"ok":true}\n');
    await st.putText('a/m.manifest.json', '{"ok":false}\n'); // putText overwrites
    expect(await st.getText('a/m.manifest.json')).toBe('{"ok":false}\n');
  });

  it('leaves no object when the source fails half way through a multipart upload, and keeps the previous one', async () => {
    const warnings: string[] = [];
    const st = storage({}, warnings);
    await st.putText('app/files/x.bin', 'previous version');
    async function* failing(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 40 * 16; i++) yield Buffer.alloc(64 * 1024, i); // 40 MiB: several parts sent
      throw new Error('pg_dump: connection lost');
    }
    const source = Readable.from(failing());
    const err = await rejection(st.put('app/files/x.bin', source));
    expect(err.message).toBe('pg_dump: connection lost'); // the source's error, as it is
    expect(source.destroyed).toBe(true);
    expect(await st.getText('app/files/x.bin')).toBe('previous version');
    expect((await st.list('app/')).map((o) => o.key)).toEqual(['app/files/x.bin']);
    // s3rver has no AbortMultipartUpload (405) nor ListMultipartUploads (501): bkp says so, and
    // the parts stay in its uploads folder as they would on a server where the abort failed.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not abort the incomplete multipart upload of app\/files\/x\.bin .*lifecycle rule AbortIncompleteMultipartUpload/);
    expect(await st.listIncompleteUploads()).toEqual([]);
  });

  it('leaves no object when the source fails before the first part is full', async () => {
    const warnings: string[] = [];
    const st = storage({}, warnings);
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(1024, 1);
      throw new Error('tar: file changed as we read it');
    }
    const err = await rejection(st.put('app/files/small.bin', Readable.from(failing())));
    expect(err.message).toBe('tar: file changed as we read it');
    expect(await st.list('')).toEqual([]);
    expect(warnings).toEqual([]); // no multipart upload was started
    expect(await rejection(st.getText('app/files/small.bin'))).toBeInstanceOf(UserError);
  });

  it('lists more than 1000 keys across pages, without the storage prefix', async () => {
    const st = storage({ prefix: 'many' });
    const keys = Array.from({ length: 1105 }, (_, i) => `app/db/${String(i).padStart(5, '0')}.manifest.json`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < keys.length) {
          const k = keys[next++]!;
          await st.putText(k, `{"n":"${k}"}`);
        }
      }),
    );
    await st.putText('other/one.txt', '1');
    const all = await st.list('');
    expect(all).toHaveLength(1106);
    expect(all.map((o) => o.key).sort()).toEqual([...keys, 'other/one.txt'].sort());
    const app = await st.list('app/db/', { detailed: true });
    expect(app).toHaveLength(1105);
    for (const o of app) {
      expect(o.size).toBe(Buffer.byteLength(`{"n":"${o.key}"}`));
      expect(o.modifiedAt).toBeInstanceOf(Date);
    }
    expect((await st.list('app/db/0110')).map((o) => o.key).sort()).toEqual(keys.filter((k) => k.startsWith('app/db/0110')));
  }, 120_000);

  it('keeps keys under its prefix, apart from other prefixes, and ignores folder markers', async () => {
    const prod = storage({ prefix: 'env/prod' });
    const dev = storage({ prefix: '/env/dev/' });
    const root = storage({ prefix: '' });
    await prod.putText('app/a.txt', 'prod');
    await dev.putText('app/a.txt', 'dev');
    expect(await prod.getText('app/a.txt')).toBe('prod');
    expect(await dev.getText('app/a.txt')).toBe('dev');
    expect(await prod.list('')).toEqual([{ key: 'app/a.txt', size: 4, modifiedAt: expect.any(Date) }]);
    const fromRoot = (await root.list('env/')).map((o) => o.key).sort();
    expect(fromRoot).toEqual(['env/dev/app/a.txt', 'env/prod/app/a.txt']);
    // A `folder/` object made by a console is not a backup key.
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
    try {
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'env/prod/app/sub/', Body: Buffer.alloc(0) }));
    } finally {
      client.destroy();
    }
    expect((await prod.list('app/')).map((o) => o.key)).toEqual(['app/a.txt']);
  });

  it('rejects keys that are not relative paths', async () => {
    const st = storage();
    for (const bad of ['', '/abs', 'a//b', 'a/../b', './a', 'a\\b']) {
      await expect(st.putText(bad, 'x')).rejects.toThrow(/invalid key/);
    }
    await expect(st.list('../')).rejects.toThrow(/invalid prefix/);
  });

  it('deletes, and deleting a missing key is fine', async () => {
    const st = storage();
    await st.putText('app/x.json', '{}');
    await st.delete('app/x.json');
    await st.delete('app/x.json');
    await st.delete('never/was.json');
    expect(await st.list('')).toEqual([]);
    const err = await rejection(st.getText('app/x.json'));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`storage "s3test" (${st.describe()}): no object app/x.json`);
    expect(await rejection(st.get('app/x.json'))).toBeInstanceOf(UserError);
  });

  it('checkWritable passes on a writable bucket and leaves no probe behind', async () => {
    const st = storage();
    await st.checkWritable();
    expect(await storage({ prefix: '' }).list(`t${counter - 1}/`)).toEqual([]);
  });

  it('close() releases connections, and the next call reconnects', async () => {
    const st = storage();
    await st.putText('a.txt', 'a');
    st.close();
    expect(await st.getText('a.txt')).toBe('a');
  });

  it('takes a lock exclusively (best effort on s3rver, which ignores If-None-Match) and warns once', async () => {
    const warnings: string[] = [];
    const st = storage({}, warnings);
    await st.putExclusive('locks/app.json', '{"holder":"one"}');
    const err = await rejection(st.putExclusive('locks/app.json', '{"holder":"two"}'));
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as AlreadyExistsError).key).toBe('locks/app.json');
    expect(await st.getText('locks/app.json')).toBe('{"holder":"one"}');
    await st.delete('locks/app.json');
    await st.putExclusive('locks/app.json', '{"holder":"three"}');
    await st.checkWritable();
    expect(warnings).toEqual([`storage "s3test": the S3 server at ${s3.endpoint} ignores If-None-Match: locks are best effort (two bkp runs starting at the same moment could both take the lock)`]);
    // The probe that found it out is gone.
    expect((await st.list('')).map((o) => o.key)).toEqual(['locks/app.json']);
  });

  it('reports a missing bucket naming it and the endpoint', async () => {
    const st = storage({ bucket: 'no-such-bucket' });
    const err = await rejection(st.checkWritable());
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain('bucket "no-such-bucket" does not exist at ' + s3.endpoint);
    expect((await rejection(st.list(''))).message).toContain('bucket "no-such-bucket" does not exist');
    expect((await rejection(st.put('a.bin', Readable.from([Buffer.from('x')])))).message).toContain('bucket "no-such-bucket" does not exist');
  });

  describe('credentials', () => {
    afterEach(() => setCredentials(s3.accessKeyId, s3.secretAccessKey));

    it('an unknown access key is a clear error (s3rver checks the key id, not the secret)', async () => {
      setCredentials('NOT-A-KEY', 'whatever');
      const st = storage();
      const err = await rejection(st.checkWritable());
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(/the access key id is not known to http:\/\/127\.0\.0\.1:\d+ \(check AWS_ACCESS_KEY_ID/);
      expect(err.message).not.toContain('whatever');
    });

    it('no credentials anywhere in the chain is a clear error', async () => {
      setCredentials('', '');
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      const st = storage();
      const started = Date.now();
      const err = await rejection(st.checkWritable());
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toContain('no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE');
      expect(Date.now() - started).toBeLessThan(20_000);
    });
  });

  it('nothing listening: a clear error, quickly', async () => {
    const closed = await freePort();
    const st = storage({ endpoint: `http://127.0.0.1:${closed}` });
    const started = Date.now();
    const err = await rejection(st.checkWritable());
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(new RegExp(`cannot reach http://127\\.0\\.0\\.1:${closed}: connection refused`));
    expect(err.message).toContain('storage "s3test" (s3://bkp/');
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await rejection(st.put('a.bin', Readable.from([Buffer.from('x')])))).message).toContain('connection refused');
  });
});

describe('S3Storage on a server that honours If-None-Match', () => {
  it('takes locks atomically: exactly one of many concurrent takers wins, and no warning', async () => {
    const proxy = await conditionalProxy(s3.endpoint, 'honour');
    try {
      const warnings: string[] = [];
      const st = storage({ endpoint: proxy.endpoint }, warnings);
      await st.checkWritable();
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => st.putExclusive('locks/app.json', `{"holder":${i}}`)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
      expect(warnings).toEqual([]);
      await st.delete('locks/app.json');
      await st.putExclusive('locks/app.json', '{"holder":"again"}');
      expect(await st.getText('locks/app.json')).toBe('{"holder":"again"}');
      expect(proxy.conditionalPuts()).toBeGreaterThanOrEqual(11); // 2 probes + 8 + 1: the header was used
    } finally {
      await proxy.stop();
    }
  });

  it('falls back to a best-effort lock, with one warning, when the server answers 501', async () => {
    const proxy = await conditionalProxy(s3.endpoint, 'not-implemented');
    try {
      const warnings: string[] = [];
      const st = storage({ endpoint: proxy.endpoint }, warnings);
      await st.putExclusive('locks/app.json', '{"holder":"one"}');
      await expect(st.putExclusive('locks/app.json', '{"holder":"two"}')).rejects.toBeInstanceOf(AlreadyExistsError);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`the S3 server at ${proxy.endpoint} ignores If-None-Match: locks are best effort`);
    } finally {
      await proxy.stop();
    }
  });
});

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A reverse proxy in front of s3rver that gives PUT `If-None-Match: *` the meaning AWS gives it
 * (412 PreconditionFailed when the key exists; conditional PUTs serialised, so the check and the
 * write are one step), or answers 501 NotImplemented to it, as some S3-compatible servers do.
 */
async function conditionalProxy(upstream: string, mode: 'honour' | 'not-implemented'): Promise<{ endpoint: string; conditionalPuts(): number; stop(): Promise<void> }> {
  const target = new URL(upstream);
  let chain: Promise<void> = Promise.resolve();
  let conditional = 0;
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, method = req.method): Promise<number> =>
    new Promise((resolve, reject) => {
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        upRes.on('end', () => resolve(upRes.statusCode ?? 502));
      });
      up.on('error', reject);
      req.pipe(up);
    });
  const exists = (req: http.IncomingMessage): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      for (const h of ['content-length', 'transfer-encoding', 'content-md5', 'expect', 'if-none-match', 'content-type']) delete headers[h];
      const head = http.request({ host: target.hostname, port: target.port, path: req.url, method: 'HEAD', headers }, (r) => {
        r.resume();
        resolve(r.statusCode === 200);
      });
      head.on('error', reject);
      head.end();
    });
  const xmlError = (res: http.ServerResponse, status: number, code: string, message: string): void => {
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
  };
  const server = http.createServer((req, res) => {
    const isConditionalPut = req.method === 'PUT' && req.headers['if-none-match'] === '*' && !(req.url ?? '').includes('uploadId=');
    if (!isConditionalPut) {
      forward(req, res).catch(() => res.destroy());
      return;
    }
    conditional++;
    if (mode === 'not-implemented') {
      req.resume();
      xmlError(res, 501, 'NotImplemented', 'A header you provided implies functionality that is not implemented');
      return;
    }
    const step = chain.then(async () => {
      if (await exists(req)) {
        req.resume();
        xmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
        return;
      }
      await forward(req, res);
    });
    chain = step.catch(() => {
      res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    conditionalPuts: () => conditional,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
