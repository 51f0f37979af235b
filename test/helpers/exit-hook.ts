/**
 * One place for what every server helper needs: the servers a test forgot (a failed beforeAll,
 * a crash, Ctrl-C) are stopped synchronously when the test process exits or is signalled, and
 * the signal then keeps its default effect unless someone else handles it.
 */
const stoppers = new Set<() => void>();
let installed = false;

/** Registers a helper's synchronous stop-everything function (idempotent per function). */
export function stopOnExit(stopAll: () => void): void {
  stoppers.add(stopAll);
  if (installed) return;
  installed = true;
  const runAll = () => {
    for (const stop of stoppers) stop();
  };
  process.on('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      runAll();
      process.removeListener(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
