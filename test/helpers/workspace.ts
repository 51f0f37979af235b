import { mkdirSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './cli.js';

/** A temp folder with data to back up and a policy file, as a new user would set one up. */
export function workspace(policy: (dir: string) => string, files: Record<string, string> = { 'data/a.txt': 'alpha\n', 'data/sub/b.txt': 'beta\n' }) {
  const t = tempDir();
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(t.dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
  const config = path.join(t.dir, 'bkp.yaml');
  writeFileSync(config, policy(t.dir));
  return { ...t, config };
}

/** A nightly files policy writing to ./backups beside it. */
export function filesPolicy(opts: { retention?: string; cron?: string; hooks?: string; extra?: string } = {}): string {
  return `version: 1
storage:
  local: { type: local, path: ./backups }
schedules:
  nightly:
    cron: "${opts.cron ?? '0 23 * * *'}"
    retention: ${opts.retention ?? '{ keep_daily: 6, keep_weekly: 4, keep_on_demand: 1 }'}
targets:
  app:
    engine: files
    paths: [./data]
    schedule: nightly
${opts.hooks ?? ''}${opts.extra ?? ''}`;
}

/** Every file under a folder, relative, sorted. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), path.join(rel, e.name));
      else out.push(path.join(rel, e.name));
    }
  };
  walk(dir, '');
  return out.sort();
}
