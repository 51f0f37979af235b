import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Parser } from 'tar';

/**
 * Feeds a Node stream into a node-tar parser (Parser or Unpack) with backpressure and waits
 * until the parser has finished (for Unpack: every file written). Rejects with the first error
 * of either side; `describe` turns a parser error into the message the user reads.
 */
export async function pumpInto(source: Readable, parser: Parser, describe: (err: Error) => Error): Promise<void> {
  let failure: Error | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    parser.on('error', (err: Error) => {
      failure ??= describe(err);
      reject(failure);
    });
    parser.on('close', () => resolve());
  });
  finished.catch(() => undefined); // observed below; avoids an unhandled rejection while pumping

  try {
    for await (const chunk of source) {
      if (failure) break;
      if (!parser.write(chunk as Buffer)) {
        await Promise.race([once(parser, 'drain'), finished]);
      }
    }
  } finally {
    if (failure) source.destroy();
  }
  if (failure) throw failure;
  parser.end();
  await finished;
}
