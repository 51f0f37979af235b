// Runs a real process and measures its wall clock (spawn to exit, as a shell user sees it) and,
// when asked, its peak RSS.
//
// Peak RSS comes from GNU time (`/usr/bin/time -f %M -o FILE`) when it is installed. Otherwise the
// CLI runs inside bench/lib/rss-wrapper.mjs, which imports dist/cli/main.js and reports
// process.resourceUsage().maxRSS on exit. Both give the kernel's high-water mark in KiB.

import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WRAPPER = fileURLToPath(new URL('./rss-wrapper.mjs', import.meta.url));

function findGnuTime() {
  for (const p of ['/usr/bin/time', '/bin/time']) {
    try {
      accessSync(p, constants.X_OK);
      const r = spawnSync(p, ['-f', '%M', 'true'], { encoding: 'utf8' });
      if (r.status === 0 && /^\d+\s*$/.test(r.stderr.trim().split('\n').pop() ?? '')) return p;
    } catch {
      // not there
    }
  }
  return undefined;
}

export const GNU_TIME = findGnuTime();
export const RSS_METHOD = GNU_TIME ? `GNU time -f %M (${GNU_TIME})` : 'process.resourceUsage().maxRSS in a wrapper importing dist/cli/main.js';

/**
 * Runs `node <script> ...args` once from cwd.
 * opts.stdout: 'null' (to /dev/null, the default) or 'capture'.
 * opts.rss: also measure peak RSS (KiB).
 * opts.nodeArgs: extra node flags (e.g. --cpu-prof).
 * Returns { ms, status, stdout?, stderr, rssKb? }.
 */
export function runNode(script, args, { cwd, stdout = 'null', rss = false, nodeArgs = [], env = process.env } = {}) {
  let cmd = process.execPath;
  let argv = [...nodeArgs, script, ...args];
  let tmp;
  let rssFile;
  if (rss) {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-rss-'));
    rssFile = path.join(tmp, 'rss');
    if (GNU_TIME) {
      argv = ['-f', '%M', '-o', rssFile, cmd, ...argv];
      cmd = GNU_TIME;
    } else {
      // The wrapper stands in for bin/bkp: node [flags] wrapper.mjs <cli args>.
      argv = [...nodeArgs, WRAPPER, ...args];
      env = { ...env, BKP_BENCH_RSS_FILE: rssFile, BKP_BENCH_CLI: path.resolve(cwd, 'dist/cli/main.js') };
    }
  }
  const devnull = stdout === 'null' ? openSync('/dev/null', 'w') : undefined;
  try {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, argv, {
      cwd,
      env,
      stdio: ['ignore', devnull ?? 'pipe', 'pipe'],
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.error) throw r.error;
    const out = { ms, status: r.status, stderr: r.stderr, stdout: devnull === undefined ? r.stdout : undefined };
    if (rss) {
      // GNU time writes "Command exited with non-zero status N" before the figure on failure.
      const text = readFileSync(rssFile, 'utf8').trim().split('\n').pop();
      out.rssKb = Number(text);
    }
    return out;
  } finally {
    if (devnull !== undefined) closeSync(devnull);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
