import { runRetentionTest } from '../../planner/retention-io.js';
import { UserError } from '../../core/diagnostics.js';
import { write } from '../context.js';

/** `bkp retention test`: restic-style retention over JSON on stdin, for users to predict it. */
export async function retentionTestCommand(): Promise<number> {
  if (process.stdin.isTTY) throw new UserError('bkp retention test reads JSON on stdin: {"policy":{"keep_daily":7},"snapshots":[{"id":"a","time":"2026-11-20T23:00:00Z"}]}');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  write(runRetentionTest(Buffer.concat(chunks).toString('utf8')));
  return 0;
}
