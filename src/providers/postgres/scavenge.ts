import { Transform, type TransformCallback } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';

type Collect = (options?: { type: 'minor' | 'major' }) => void;

let collect: Collect | null | undefined;

/**
 * V8's `gc`, made available at run time. `--expose-gc` only shows it to contexts created after
 * the flag is set, so the main context is not changed.
 */
function collector(): Collect | null {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  return collect;
}

/** Bytes of artifact between two young-generation collections. */
const EVERY = 8 * 1024 * 1024;

/**
 * Passes an artifact through unchanged and runs a young-generation collection (a scavenge, about
 * a millisecond) every 8 MiB. Each chunk read from a pipe is a fresh buffer outside V8's heap, and
 * V8 collects them long after they are dead: measured on a 1 GiB dump, dead chunks added about
 * 30 MiB to bkp's RSS (to 117–123 MiB), which a scavenge every 8 MiB keeps under 10 MiB (bkp then
 * peaks at 92–101 MiB) for about 0.1 s of CPU.
 */
export class Scavenging extends Transform {
  private since = 0;
  constructor() {
    super({ highWaterMark: 256 * 1024 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.since += chunk.length;
    if (this.since >= EVERY) {
      this.since = 0;
      collector()?.({ type: 'minor' });
    }
    cb(null, chunk);
  }
}
