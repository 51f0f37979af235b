import { open, readdir, readFile, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { UserError } from '../../core/diagnostics.js';
import { startProcess, type StartedProcess } from './child.js';
import { createWorkDir, setKill, type WorkDir } from './workdir.js';
import { END_OF_ARCHIVE, fileHeader, padding } from './tar.js';

/** What a directory dump reports for the manifest. */
export interface DirectoryFacts {
  /** Members of the tar: toc.dat and one data file per table (plus large objects). */
  files: number;
  /** Bytes pg_dump wrote (the tar's content, before any stream compression). */
  dump_bytes: number;
  /** The most the temporary folder held at once. */
  temp_peak_bytes: number;
}

export interface DirectoryDumpOptions {
  pgDump: string;
  /** pg_dump's arguments besides format, jobs, verbosity and the output folder. */
  args: string[];
  env: NodeJS.ProcessEnv;
  jobs: number;
  /** `temp_dir`: the folder the dump is staged in. */
  tempParent: string;
  target: string;
  what: string;
  /** A program that compresses the tar stream (`zstd -T0 -1`…), when pg_dump does not. */
  compressor?: Compressor;
  signal?: AbortSignal;
}

/** A compressing program that reads files and writes their compressed concatenation to stdout. */
export interface Compressor {
  program: string;
  args: (files: string[]) => string[];
}

/** Read size for the data files: large enough that the per-chunk cost of streams is negligible. */
const READ_SIZE = 256 * 1024;
/** Files per compressor run: a batch of large objects can be thousands of small files. */
const BATCH_FILES = 100;

/**
 * `pg_dump --format=directory --jobs=N` into a temporary folder, streamed out as a tar while it
 * runs: pg_dump writes toc.dat before any data, then each worker writes one file per table and the
 * leader logs `finished item <dumpId> TABLE DATA …` (with --verbose) when a file is complete. Each
 * completed file goes into the tar at once and is deleted once streamed, so the folder holds at
 * most the files being written plus those waiting for the reader, never the whole dump twice.
 * Whatever the --verbose parsing misses is swept into the tar when pg_dump exits, so it speeds
 * things up but never decides what the archive holds.
 */
export async function dumpDirectory(opts: DirectoryDumpOptions): Promise<{ stream: Readable; done: Promise<DirectoryFacts> }> {
  const work = await createWorkDir(opts.tempParent, opts.target);
  const dir = path.join(work.path, 'dump');

  const ready: string[] = [];
  const queued = new Set<string>();
  let dumpEnded = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const enqueue = (name: string) => {
    if (queued.has(name)) return;
    queued.add(name);
    ready.push(name);
    notify();
  };
  // Discovery of finished files runs one at a time, in the order pg_dump reported them.
  let discovering: Promise<void> = Promise.resolve();
  const discover = (fn: () => Promise<void>) => {
    discovering = discovering.then(fn).catch((err: Error) => {
      failure ??= err;
      notify();
    });
  };

  const onFinished = (id: string, desc: string) =>
    discover(async () => {
      // toc.dat is complete before the first item is dispatched to a worker.
      enqueue('toc.dat');
      const names = await readdir(dir);
      if (/^(BLOBS|LARGE OBJECTS)\b/.test(desc)) {
        // blobs.toc (pg_dump ≤ 15) or blobs_<dumpId>.toc: "<oid> <file>" per line.
        const toc = names.find((n) => n === `blobs_${id}.toc`) ?? names.find((n) => n === 'blobs.toc');
        if (toc) {
          const text = await readFile(path.join(dir, toc), 'utf8');
          for (const line of text.split('\n')) {
            const file = line.split(' ')[1];
            if (file && names.includes(file)) enqueue(file);
          }
          enqueue(toc);
        }
        return;
      }
      const data = new RegExp(`^${id}\\.dat(\\.(gz|lz4|zst))?$`);
      for (const n of names) if (data.test(n)) enqueue(n);
    });

  // --no-sync: the folder is scratch space, most of it deleted before pg_dump ends; flushing it to disk is wasted I/O.
  const tool = startProcess(opts.pgDump, ['--format=directory', `--jobs=${opts.jobs}`, '--verbose', '--no-sync', '--no-password', ...opts.args, `--file=${dir}`], {
    env: opts.env,
    what: opts.what,
    stdin: 'ignore',
    stdout: 'ignore',
    group: true,
    onLine: (line) => {
      // Workers and leader share stderr, so a line may start with another's "pg_dump: ".
      const m = /finished item (\d+) (.*)$/.exec(line);
      if (m) onFinished(m[1]!, m[2]!);
    },
    // --verbose fills stderr with progress: quote what explains a failure.
    explain: (lines) => {
      const useful = lines.filter((l) => /error|fatal|detail|hint|could not|failed|terminat/i.test(l));
      return (useful.length ? useful : lines).slice(-3).map((l) => l.replace(/^pg_dump: /, ''));
    },
  });
  setKill(work, () => tool.kill('SIGKILL'));
  tool.exited.then(
    () =>
      discover(async () => {
        // Everything not yet streamed, toc.dat first (an empty database logs no finished item).
        enqueue('toc.dat');
        for (const n of (await readdir(dir)).sort()) enqueue(n);
        dumpEnded = true;
        notify();
      }),
    (err: Error) => {
      failure ??= err;
      notify();
    },
  );

  let peak = 0;
  let bytes = 0;
  let files = 0;
  const measure = async () => {
    let sum = 0;
    for (const n of await readdir(dir).catch(() => [] as string[])) sum += (await stat(path.join(dir, n)).catch(() => ({ size: 0 }))).size;
    peak = Math.max(peak, sum);
  };

  /** What is waiting to be streamed, in order; undefined once pg_dump ended and all was taken. */
  async function nextBatch(max: number): Promise<string[] | undefined> {
    for (;;) {
      if (failure) throw failure;
      if (ready.length > 0) return ready.splice(0, max);
      if (dumpEnded) return undefined;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }
  const release = async (names: string[]) => {
    // Sizes only grow between two deletions: just before one is where the folder peaks.
    await measure();
    for (const n of names) await unlink(path.join(dir, n));
  };

  // Node reads the files and writes the tar itself (pg_dump compressed them, or nothing does).
  let current: FileHandle | undefined;
  async function* plainTar(): AsyncGenerator<Buffer> {
    for (;;) {
      const batch = await nextBatch(1);
      if (batch === undefined) break;
      const name = batch[0]!;
      current = await open(path.join(dir, name), 'r');
      const { size, mtimeMs } = await current.stat();
      yield fileHeader(name, size, mtimeMs);
      let left = size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, left));
        const { bytesRead } = await current.read(buf, 0, buf.length, null);
        if (bytesRead === 0) throw new UserError(`${opts.what}: ${name} shrank while it was being archived (${size - left} of ${size} bytes)`);
        left -= bytesRead;
        yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      }
      const pad = padding(size);
      if (pad.length) yield pad;
      await current.close();
      current = undefined;
      await release(batch);
      files += 1;
      bytes += size;
    }
    yield END_OF_ARCHIVE;
  }

  // The compressor reads the data files itself (`zstd -c glue file glue file…`: one frame per
  // input, and concatenated frames decompress to the concatenation): the uncompressed dump never
  // passes through node, which only carries the compressed bytes to storage. The "glue" files
  // hold the padding of the previous member and the header of the next.
  let compressing: StartedProcess | undefined;
  async function* compressedTar(compressor: Compressor): AsyncGenerator<Buffer> {
    let owed: Buffer = Buffer.alloc(0);
    let seq = 0;
    const run = async function* (inputs: string[]): AsyncGenerator<Buffer> {
      const proc = startProcess(compressor.program, compressor.args(inputs), { what: `${opts.what}: ${compressor.program} compression`, stdin: 'ignore' });
      compressing = proc;
      for await (const chunk of proc.stdout!) yield chunk as Buffer;
      await proc.exited;
      compressing = undefined;
    };
    for (;;) {
      const batch = await nextBatch(BATCH_FILES);
      if (batch === undefined) break;
      const inputs: string[] = [];
      for (const name of batch) {
        const file = path.join(dir, name);
        const { size, mtimeMs } = await stat(file);
        const glue = path.join(work.path, `glue-${seq++}`);
        await writeFile(glue, Buffer.concat([owed, fileHeader(name, size, mtimeMs)]));
        inputs.push(glue, file);
        owed = padding(size);
        files += 1;
        bytes += size;
      }
      yield* run(inputs);
      await release(batch);
      for (let i = 0; i < inputs.length; i += 2) await unlink(inputs[i]!);
    }
    const last = path.join(work.path, 'glue-end');
    await writeFile(last, Buffer.concat([owed, END_OF_ARCHIVE]));
    yield* run([last]);
  }

  let finishing: Promise<void> | undefined;
  const finish = () =>
    (finishing ??= (async () => {
      await tool.stop();
      await compressing?.stop();
      await current?.close().catch(() => undefined);
      await work.remove();
    })());

  let settle!: { resolve: (f: DirectoryFacts) => void; reject: (e: Error) => void };
  const done = new Promise<DirectoryFacts>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined);

  const source = opts.compressor ? compressedTar(opts.compressor) : plainTar();
  let pulling = false;
  const tar: Readable = new Readable({
    highWaterMark: READ_SIZE,
    read() {
      if (pulling) return;
      pulling = true;
      void (async () => {
        try {
          for (;;) {
            const r = await source.next();
            if (tar.destroyed) return;
            if (r.done) {
              await finish();
              settle.resolve({ files, dump_bytes: bytes, temp_peak_bytes: peak });
              tar.push(null);
              return;
            }
            if (!tar.push(r.value)) break;
          }
          pulling = false;
        } catch (err) {
          tar.destroy(err as Error);
        }
      })();
    },
    destroy(err, cb) {
      const why = err ?? new UserError(`${opts.what}: the backup stream was closed before the dump ended`);
      failure ??= why;
      notify();
      finish().then(
        () => {
          settle.reject(failure ?? why);
          cb(err);
        },
        (e: Error) => {
          settle.reject(failure ?? why);
          cb(err ?? e);
        },
      );
    },
  });
  opts.signal?.addEventListener('abort', () => tar.destroy(new UserError(`${opts.what}: cancelled`)), { once: true });

  return { stream: tar, done };
}
