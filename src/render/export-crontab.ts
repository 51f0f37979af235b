import path from 'node:path';
import type { Policy, Target } from '../policy/types.js';
import { isRecord } from '../policy/tree.js';

/**
 * `bkp export crontab`: one cron line per target that runs `bkp apply --target T --auto-approve`.
 * Pure: the policy and the options in, text out. Never prints a secret: `${env:…}` references are
 * listed by name, their values are never read here.
 */
export interface CrontabOptions {
  /** How cron starts bkp, inserted as is (an absolute path is safest: cron's PATH is short). */
  bkpCommand: string;
  /** The policy file as `bkp apply -c` will read it: absolute, or relative to `workdir`. */
  configPath: string;
  /** Each line `cd`s here first; default: the folder of `configPath`. */
  workdir?: string;
  /** Each target logs to `<logDir>/<target>.log` (created when missing); default `<workdir>/logs`. */
  logDir?: string;
  /** The crontab's PATH line; default `/usr/local/bin:/usr/bin:/bin`. */
  pathEnv?: string;
  /**
   * The policy document as written (parsed YAML, before interpolation). With it, the variables
   * hooks and storages need are found too; without it only the engine settings' are.
   */
  written?: unknown;
}

/** Names of the `${env:NAME}` and `${file:PATH}` references in a value, sorted, each once. */
export interface References {
  env: string[];
  files: string[];
}

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

export function renderCrontab(policy: Policy, opts: CrontabOptions): string {
  const workdir = opts.workdir ?? path.dirname(opts.configPath);
  const logDir = opts.logDir ?? path.join(workdir, 'logs');
  const all = policyReferences(policy, opts.written);
  const targets = Object.values(policy.targets).sort((a, b) => a.name.localeCompare(b.name));
  const zones = [...new Set(targets.map((t) => t.schedule.timezone))].sort(zoneOrder);

  const out: string[] = [
    `# bkp schedules for ${opts.configPath} (policy sha256 ${policy.digest.slice(0, 12)}), written by \`bkp export crontab\`.`,
    '# Do not edit: change the policy and export again. Install with `crontab FILE` (it replaces the user\'s crontab).',
    '#',
    '# Each line runs `bkp apply --target T --auto-approve`, which plans first: a run with nothing due does nothing,',
    '# and many missed fires give one backup. No flock is needed: bkp locks each target in its storage itself, and a',
    '# second run fails at once naming the holder.',
    '#',
    '# Time zones: cronie (Fedora, RHEL, Arch…) runs the lines below a CRON_TZ= line in that zone. Plain vixie cron',
    '# (the `cron` package of Debian and Ubuntu) ignores CRON_TZ and runs every line in the host\'s zone: there, set',
    '# the host\'s zone to the policy\'s, or a line may fire before the policy\'s time, find nothing due, and the backup',
    '# waits for the next fire. CRON_TZ=UTC is written even though a UTC host would not need it.',
  ];
  if (all.env.length > 0) {
    out.push(
      '#',
      '# bkp reads the whole policy on every run, so every line needs all of these variables, which cron does not',
      '# pass on (it starts jobs with an almost empty environment). Their values are never written here:',
      `#   ${all.env.join(' ')}`,
    );
  }
  if (all.files.length > 0) out.push(`# Files the policy reads (\${file:…}, relative to its folder): ${all.files.join(' ')}`);
  out.push('', 'SHELL=/bin/sh', `PATH=${opts.pathEnv ?? DEFAULT_PATH}`);

  for (const zone of zones) {
    out.push('', `CRON_TZ=${zone}`);
    for (const t of targets.filter((x) => x.schedule.timezone === zone)) {
      const needs = targetReferences(policy, t, opts.written);
      const schedule = t.schedule.name ? `schedule ${t.schedule.name}` : 'inline schedule';
      out.push(`# ${t.name} (${t.engine}, ${schedule}: ${t.schedule.cron} ${zone}; storage ${t.storage.join(', ')})${needs.env.length ? `: needs ${needs.env.join(', ')}` : ''}`);
      const problem = unsupportedCron(t.schedule.cron);
      if (problem) out.push(`# WARNING: ${problem}; cron cannot run this line as the policy means it.`);
      const command = [
        `cd ${shq(workdir)}`,
        `mkdir -p ${shq(logDir)}`,
        `${opts.bkpCommand} apply -c ${shq(opts.configPath)} --target ${shq(t.name)} --auto-approve >> ${shq(path.join(logDir, `${t.name}.log`))} 2>&1`,
      ].join(' && ');
      // In a crontab line an unescaped % ends the command (the rest becomes its stdin).
      out.push(`${cronFields(t.schedule.cron)} ${command.replace(/%/g, '\\%')}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** UTC first (the common case), then the others by name. */
function zoneOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'UTC') return -1;
  if (b === 'UTC') return 1;
  return a.localeCompare(b);
}

/** The cron as crontab and Kubernetes take it: `?` (cron-parser's "any") is `*` there. */
export function cronFields(cron: string): string {
  const expr = cron.trim();
  if (expr.startsWith('@')) return expr;
  return expr.split(/\s+/).map((f) => (f === '?' ? '*' : f)).join(' ');
}

/**
 * Why a cron expression that the policy accepts (cron-parser) cannot be given to cron or to a
 * Kubernetes CronJob, or undefined. `L`, `W` and `#` are cron-parser extensions that neither
 * vixie cron, cronie nor Kubernetes' parser knows.
 */
export function unsupportedCron(cron: string): string | undefined {
  const expr = cron.trim();
  if (expr.startsWith('@')) return undefined;
  const fields = expr.split(/\s+/);
  const dom = fields[2] ?? '';
  const dow = fields[4] ?? '';
  if (/[LW]/i.test(dom)) return `day of month "${dom}" uses L or W`;
  if (/#|\dL|^L$/i.test(dow)) return `day of week "${dow}" uses # or L`;
  return undefined;
}

/** Quotes for /bin/sh when needed. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

// Same grammar as src/policy/interpolate.ts: `$${` is a literal, only env: and file: are ours.
const TOKEN = /\$\$\{|\$\{(env|file):/g;

/** Every `${env:NAME}` and `${file:PATH}` inside the string values of `value` (keys are never interpolated). */
export function referencesIn(value: unknown): References {
  const env = new Set<string>();
  const files = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === 'string') {
      TOKEN.lastIndex = 0;
      for (let m = TOKEN.exec(v); m; m = TOKEN.exec(v)) {
        if (m[0] === '$${') continue;
        const close = v.indexOf('}', TOKEN.lastIndex);
        if (close < 0) break;
        const name = v.slice(TOKEN.lastIndex, close).trim();
        if (name) (m[1] === 'env' ? env : files).add(name);
        TOKEN.lastIndex = close + 1;
      }
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (isRecord(v)) Object.values(v).forEach(visit);
  };
  visit(value);
  return { env: [...env].sort(), files: [...files].sort() };
}

/** What a run of bkp needs to load the policy at all: every reference anywhere in it (interpolation is all or nothing). */
export function policyReferences(policy: Policy, written?: unknown): References {
  if (isRecord(written)) return referencesIn(written);
  return referencesIn(Object.values(policy.targets).map((t) => t.displaySettings));
}

/** The references a target itself uses: its engine settings, hooks and inline schedule, its storages, its schedule template. */
export function targetReferences(policy: Policy, target: Target, written?: unknown): References {
  if (!isRecord(written)) return referencesIn(target.displaySettings);
  const pick = (section: string, name: string | undefined): unknown => {
    const s = written[section];
    return name !== undefined && isRecord(s) ? s[name] : undefined;
  };
  return referencesIn([
    pick('targets', target.name),
    ...target.storage.map((s) => pick('storage', s)),
    pick('schedules', target.schedule.name),
  ]);
}
