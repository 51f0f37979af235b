import type { Readable } from 'node:stream';
import { UserError } from '../../core/diagnostics.js';
import { startProcess } from './child.js';

export interface CustomDumpOptions {
  pgDump: string;
  /** pg_dump's arguments besides the format. */
  args: string[];
  env: NodeJS.ProcessEnv;
  what: string;
  /** A program that compresses pg_dump's output (`zstd -T0 -1`…), when pg_dump does not. */
  compressor?: { program: string; args: string[] };
  signal?: AbortSignal;
}

/**
 * `pg_dump --format=custom` to stdout. With a compressor, pg_dump writes straight into the
 * compressor's stdin (one pipe between the two processes: the uncompressed dump never passes
 * through node) and the artifact is the compressor's output.
 */
export function dumpCustom(opts: CustomDumpOptions): { stream: Readable; done: Promise<void> } {
  const args = ['--format=custom', '--no-password', ...opts.args];
  if (!opts.compressor) {
    const dump = startProcess(opts.pgDump, args, { env: opts.env, what: opts.what, stdin: 'ignore' });
    opts.signal?.addEventListener('abort', () => dump.kill(), { once: true });
    return { stream: dump.stdout!, done: dump.exited };
  }
  const { program } = opts.compressor;
  const compressor = startProcess(program, opts.compressor.args, { what: `${opts.what}: ${program} compression`, stdin: 'pipe' });
  compressor.stdin!.on('error', () => undefined); // pg_dump owns the pipe; its failure is reported through exit codes
  const dump = startProcess(opts.pgDump, args, { env: opts.env, what: opts.what, stdin: 'ignore', stdout: compressor.stdin! });
  // pg_dump holds the write end now: closing ours lets the compressor see the end when pg_dump exits.
  compressor.stdin!.destroy();
  const stream = compressor.stdout!;
  // The reader gave up (storage full, cancelled): stop both, so that neither is left writing.
  stream.once('close', () => {
    if (stream.readableEnded) return; // the normal end: both are exiting on their own
    dump.kill();
    compressor.kill();
  });
  opts.signal?.addEventListener('abort', () => stream.destroy(new UserError(`${opts.what}: cancelled`)), { once: true });
  // A compressor failure makes pg_dump fail too (broken pipe): the compressor's error says why.
  const done = Promise.allSettled([dump.exited, compressor.exited]).then(([d, c]) => {
    if (c.status === 'rejected') throw c.reason as Error;
    if (d.status === 'rejected') throw d.reason as Error;
  });
  done.catch(() => undefined);
  return { stream, done };
}
