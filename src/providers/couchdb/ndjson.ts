import type { Readable } from 'node:stream';
import { UserError } from '../../core/diagnostics.js';

/**
 * The lines of an NDJSON export (already decoded by the storage codec), a chunk's worth at a
 * time, read with backpressure: the caller's pace sets how fast the artifact is read (readline's
 * async iterator would read ahead without bound while a restore waits on the server). Lines are
 * cut as bytes, so a multi-byte character split across chunks is decoded whole.
 */
export async function* exportLines(artifact: Readable, what: string): AsyncGenerator<string[]> {
  let rest: Buffer[] = [];
  try {
    for await (const chunk of artifact as AsyncIterable<Buffer>) {
      const lines: string[] = [];
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, nl);
        lines.push(rest.length ? Buffer.concat([...rest, piece]).toString('utf8') : piece.toString('utf8'));
        rest = [];
        start = nl + 1;
      }
      if (start < chunk.length) rest.push(chunk.subarray(start));
      if (lines.length) yield lines;
    }
  } catch (err) {
    throw new UserError(`${what}: the export could not be read: ${(err as Error).message}`);
  }
  if (rest.length) yield [Buffer.concat(rest).toString('utf8')];
}
