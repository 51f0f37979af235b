import { loadPolicyOrFail, write } from '../context.js';
import { openStoragesFor } from '../../apply/observe.js';
import { unlock } from '../../apply/locks.js';
import { UserError } from '../../core/diagnostics.js';

/** `bkp unlock ID`: removes a stale lock (ID is the locked target's name). */
export async function unlockCommand(args: { config: string; id: string }): Promise<number> {
  const policy = await loadPolicyOrFail(args.config);
  const storages = await openStoragesFor(policy, Object.values(policy.targets));
  const removed = await unlock([...storages.values()], args.id);
  if (removed.length === 0) throw new UserError(`no lock "${args.id}" in storages ${[...storages.keys()].join(', ')}`);
  for (const line of removed) write(line);
  return 0;
}
