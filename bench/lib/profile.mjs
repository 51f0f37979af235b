// Where the time goes, flamegraph-free: runs the CLI once under `node --cpu-prof` and summarizes
// the .cpuprofile as the top functions by self time, the top bkp functions by total (inclusive)
// time, and self time per area (bkp source file, npm package, node internals, GC…).
// Locations in dist/ are mapped back to src/*.ts through the compiler's source maps.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode } from './measure.mjs';

export function profileCli(root, args, { intervalUs = 200 } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-prof-'));
  try {
    const r = runNode('bin/bkp', args, { cwd: root, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${intervalUs}`] });
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile written (exit ${r.status}): ${r.stderr.slice(0, 500)}`);
    return summarize(JSON.parse(readFileSync(path.join(dir, file), 'utf8')), root, r.ms);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const maps = new Map();
function sourceMapFor(file) {
  if (!maps.has(file)) {
    let map;
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = undefined;
    }
    maps.set(file, map);
  }
  return maps.get(file);
}

/** `file:///…/dist/x/y.js` line 0-based → `src/x/y.ts:LINE` (1-based), else a short path. */
function locate(callFrame, root) {
  const { url, lineNumber, columnNumber } = callFrame;
  if (!url) return { file: '', where: '' };
  let file = url;
  if (url.startsWith('file://')) file = fileURLToPath(url);
  if (file.startsWith(path.join(root, 'dist') + path.sep) && lineNumber >= 0) {
    const map = sourceMapFor(file);
    const e = map?.findEntry(lineNumber, columnNumber);
    if (e && e.originalSource) {
      const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : path.resolve(path.dirname(file), e.originalSource);
      const rel = path.relative(root, src);
      return { file: rel, where: `${rel}:${e.originalLine + 1}` };
    }
  }
  const rel = file.startsWith(root + path.sep) ? path.relative(root, file) : file;
  return { file: rel, where: lineNumber >= 0 ? `${rel}:${lineNumber + 1}` : rel };
}

function area(callFrame, loc) {
  const name = callFrame.functionName;
  if (name === '(garbage collector)' || name === '(program)' || name === '(idle)' || name === '(root)') return name;
  const f = loc.file;
  if (!f) return '(native / builtin)';
  const nm = f.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = f.slice(nm + 'node_modules/'.length).split('/');
    return `npm:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (f.startsWith('node:')) return `node:${f.slice(5).split('/')[0]}`;
  if (f.startsWith('src/') || f.startsWith('dist/') || f.startsWith('bin/')) return f;
  return f;
}

export function summarize(profile, root, wallMs) {
  const self = new Map(); // node id → µs
  // timeDeltas[i] is the time elapsed before sample i; attribute it to the sample before.
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + Math.max(0, dt));
  }
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);

  const info = new Map();
  for (const n of profile.nodes) {
    const loc = locate(n.callFrame, root);
    const fn = n.callFrame.functionName || '(anonymous)';
    info.set(n.id, { key: `${fn} ${loc.where}`, fn, where: loc.where, area: area(n.callFrame, loc), isBkp: loc.file.startsWith('src/') });
  }

  const selfByFn = new Map();
  const selfByArea = new Map();
  for (const [id, us] of self) {
    const i = info.get(id);
    selfByFn.set(i.key, { fn: i.fn, where: i.where, us: (selfByFn.get(i.key)?.us ?? 0) + us });
    selfByArea.set(i.area, (selfByArea.get(i.area) ?? 0) + us);
  }

  // Inclusive time per bkp function, counting a function once per stack (recursion-safe).
  const inclusive = new Map();
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  for (const [id, us] of self) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const i = info.get(cur);
      if (!i.isBkp || seen.has(i.key)) continue;
      seen.add(i.key);
      inclusive.set(i.key, { fn: i.fn, where: i.where, us: (inclusive.get(i.key)?.us ?? 0) + us });
    }
  }

  const ms = (us) => us / 1000;
  const top = (m, n) =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, n)
      .map((x) => ({ function: x.fn, where: x.where, ms: ms(x.us), pct: (100 * x.us) / totalUs }));
  return {
    wall_ms: wallMs,
    sampled_ms: ms(totalUs),
    top_self: top(selfByFn, 20),
    top_bkp_inclusive: top(inclusive, 15),
    by_area: [...selfByArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([a, us]) => ({ area: a, ms: ms(us), pct: (100 * us) / totalUs })),
  };
}

export function printProfile(title, p, print = console.log) {
  const row = (cells) => `| ${cells.join(' | ')} |`;
  print(`\n#### Profile: ${title}  (wall ${p.wall_ms.toFixed(0)} ms under the profiler, ${p.sampled_ms.toFixed(0)} ms sampled)\n`);
  print('Top functions by self time:\n');
  print(row(['self ms', '%', 'function', 'where']));
  print(row(['---:', '---:', '---', '---']));
  for (const x of p.top_self) print(row([x.ms.toFixed(1), x.pct.toFixed(1), `\`${x.function}\``, x.where || '—']));
  print('\nbkp functions by total (inclusive) time (synchronous stretches only: time after an `await` is not counted in the caller):\n');
  print(row(['total ms', '%', 'function', 'where']));
  print(row(['---:', '---:', '---', '---']));
  for (const x of p.top_bkp_inclusive) print(row([x.ms.toFixed(1), x.pct.toFixed(1), `\`${x.function}\``, x.where]));
  print('\nSelf time by area:\n');
  print(row(['self ms', '%', 'area']));
  print(row(['---:', '---:', '---']));
  for (const x of p.by_area) print(row([x.ms.toFixed(1), x.pct.toFixed(1), x.area]));
}
