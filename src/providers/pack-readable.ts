import { Readable } from 'node:stream';
import type { Pack } from 'tar';

/**
 * Bridges a node-tar Pack (a minipass stream) to a Node Readable with backpressure: pausing the
 * Readable pauses the pack, which pauses gzip and the file being read. `done` resolves with
 * `facts()` once the archive ended, and rejects with `describe(err)` when tar failed or the
 * consumer gave up first (storage full). `finish` runs once, whatever happened (temp folders).
 */
export function packAsReadable<F>(pack: Pack, opts: { target: string; facts: () => F; describe: (err: unknown) => Error; finish?: () => void; signal?: AbortSignal }): { stream: Readable; done: Promise<F> } {
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    opts.finish?.();
  };
  let ended = false;
  let failure: Error | undefined;
  let settle: { resolve: (f: F) => void; reject: (err: Error) => void } | undefined;
  const done = new Promise<F>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // The caller may never await `done` when the upload already failed: never an unhandled rejection.
  done.catch(() => undefined);

  const stream = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      pack.resume();
    },
    destroy(err, callback) {
      pack.pause();
      pack.removeAllListeners('data');
      finish();
      if (!ended) settle?.reject(failure ?? err ?? new Error(`target ${opts.target}: the archive stream was closed before it ended`));
      callback(err);
    },
  });
  pack.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) pack.pause();
  });
  pack.on('end', () => {
    ended = true;
    finish();
    stream.push(null);
    settle?.resolve(opts.facts());
  });
  pack.on('error', (err: unknown) => {
    failure ??= opts.describe(err);
    settle?.reject(failure);
    stream.destroy(failure);
  });
  opts.signal?.addEventListener('abort', () => stream.destroy(new Error(`target ${opts.target}: backup cancelled`)), { once: true });
  return { stream, done };
}
