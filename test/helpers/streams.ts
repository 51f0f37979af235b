import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/** Stream helpers the storage tests share. */

/** `total` bytes generated on the fly (never held in memory), with a running sha256. */
export function generated(total: number, chunkSize = 64 * 1024): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  let n = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const size = Math.min(chunkSize, total - sent);
      const chunk = Buffer.alloc(size, n++ % 251); // varying content, so order errors show in the hash
      chunk.writeUInt32BE(n, 0);
      hash.update(chunk);
      sent += size;
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

export async function sha256Of(stream: Readable): Promise<{ hex: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hex: hash.digest('hex'), size };
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}
