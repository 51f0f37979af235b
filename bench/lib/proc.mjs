// Runs any command as a process tree and measures it: wall clock (spawn to exit), the peak RSS of
// the largest process of the tree and the CPU time (user + system) of the whole tree (GNU time
// -f '%M %U %S': the kernel's figures for the child and its waited-for descendants), and, from /proc, every descendant's own high-water mark
// (VmHWM, read every `sampleMs`, so a process shorter than that may be missed) grouped by command
// name, and the largest sum of the tree's current RSS seen at one sample.

import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GNU_TIME } from './measure.mjs';

function readProc(pid, file) {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every pid below `root` (not root itself), by walking /proc/<pid>/stat's ppid field. */
function descendants(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProc(name, 'stat');
    if (!stat) continue;
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    for (const c of children.get(todo.pop()) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

function kb(status, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) : 0;
}

/**
 * Runs `cmd args` (stdout to /dev/null unless capture) and resolves
 * { ms, status, signal, stderr, stdout?, maxRssKb, cpuS, byCommand: {comm: peakKb}, treeRssKb }.
 * opts: { cwd, env, capture, sampleMs (200), timeoutMs }.
 */
export function runMeasured(cmd, args, { cwd = process.cwd(), env = process.env, capture = false, sampleMs = 200, timeoutMs = 3_600_000 } = {}) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bkp-bench-proc-'));
  const rssFile = path.join(tmp, 'rss');
  const [file, argv] = GNU_TIME ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, cmd, ...args]] : [cmd, args];
  const devnull = capture ? undefined : openSync('/dev/null', 'w');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, argv, { cwd, env, stdio: ['ignore', devnull ?? 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-64 * 1024)));
    if (capture) {
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d) => (stdout += d));
    }
    const peakByPid = new Map(); // pid → { comm, hwm }
    let treeRssKb = 0;
    const sample = () => {
      let sum = 0;
      for (const pid of descendants(child.pid)) {
        const status = readProc(pid, 'status');
        if (!status) continue;
        const comm = (readProc(pid, 'comm') ?? '?').trim();
        const hwm = kb(status, 'VmHWM');
        sum += kb(status, 'VmRSS');
        const p = peakByPid.get(pid);
        if (!p || p.comm !== comm) peakByPid.set(pid, { comm, hwm: Math.max(hwm, p && p.comm === comm ? p.hwm : 0) });
        else p.hwm = Math.max(p.hwm, hwm);
      }
      treeRssKb = Math.max(treeRssKb, sum);
    };
    const timer = setInterval(sample, sampleMs);
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearInterval(timer);
      clearTimeout(killer);
      if (devnull !== undefined) closeSync(devnull);
      rmSync(tmp, { recursive: true, force: true });
      reject(err);
    });
    child.on('close', (status, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearInterval(timer);
      clearTimeout(killer);
      if (devnull !== undefined) closeSync(devnull);
      let maxRssKb;
      let cpuS;
      if (GNU_TIME) {
        try {
          // GNU time writes "Command exited with non-zero status N" before the figures on failure.
          const [m, u, sys] = readFileSync(rssFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
          maxRssKb = m;
          cpuS = u + sys;
        } catch {
          maxRssKb = undefined;
        }
      }
      rmSync(tmp, { recursive: true, force: true });
      const byCommand = {};
      for (const { comm, hwm } of peakByPid.values()) byCommand[comm] = Math.max(byCommand[comm] ?? 0, hwm);
      resolve({ ms, status, signal, stderr, stdout: capture ? stdout : undefined, maxRssKb, cpuS, byCommand, treeRssKb });
    });
  });
}
