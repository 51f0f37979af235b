import { createRequire } from 'node:module';
import type { Diagnostic } from '../core/diagnostics.js';
import type { DuplicateKey, YamlSource } from './read-yaml.js';
import { SCHEDULED_COUNTS, SCHEDULED_WITHINS, keepsScheduledBackups } from './retention-rules.js';
import { didYouMean } from './suggest.js';
import { atPath, formatPath, isRecord } from './tree.js';
import type { FieldPath } from './tree.js';
import type { RetentionRules } from './types.js';
import { cronToSlm, retentionToSlm } from '../planner/resources/slm.js';

// cron-parser is CommonJS and require()s luxon's CommonJS build; importing luxon as ESM here would load
// a second copy of it (its ESM build). Both are loaded on the first schedule checked, through require.
const require = createRequire(import.meta.url);
let libs: { cron: typeof import('cron-parser').CronExpressionParser; zone: typeof import('luxon').IANAZone } | undefined;
function scheduleLibs(): NonNullable<typeof libs> {
  libs ??= {
    cron: (require('cron-parser') as typeof import('cron-parser')).CronExpressionParser,
    zone: (require('luxon') as typeof import('luxon')).IANAZone,
  };
  return libs;
}

/** The storage a policy gets when it declares none (DESIGN §1). */
export const IMPLICIT_STORAGE = 'local';

/**
 * Checks the schema cannot express: references between sections, cron syntax, time zones,
 * retentions that keep nothing, and advice from the runbooks. It reads the interpolated value
 * defensively, so it runs (and reports) even when the schema found errors elsewhere.
 */
export function semanticDiagnostics(value: unknown, source: YamlSource): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (severity: Diagnostic['severity'], code: string, path: FieldPath, message: string, part: 'key' | 'value' = 'value'): void => {
    const target = path[0] === 'targets' && typeof path[1] === 'string' ? path[1] : undefined;
    out.push({ severity, code, summary: atPath(path, message), location: source.locate(path, part), path: formatPath(path), ...(target ? { target } : {}) });
  };
  if (!isRecord(value)) return out;
  const storages = value.storage === undefined ? { [IMPLICIT_STORAGE]: {} } : isRecord(value.storage) ? value.storage : undefined;
  const schedules = isRecord(value.schedules) ? value.schedules : {};
  const targets = isRecord(value.targets) ? value.targets : {};

  for (const [name, s] of Object.entries(schedules)) {
    if (isRecord(s)) checkSchedule(s, ['schedules', name], report);
  }
  if (storages) {
    for (const [name, s] of Object.entries(storages)) {
      if (isRecord(s)) checkRetention(s.retention, ['storage', name, 'retention'], report);
      if (isRecord(s) && s.type === 'sftp' && s.insecure_skip_host_key_check === true) {
        report('warning', 'semantic.insecure_host_key', ['storage', name, 'insecure_skip_host_key_check'],
          'the server\'s host key is not checked: anyone who can intercept the connection receives the backups; set host_key: "SHA256:…" (ssh-keyscan -p PORT HOST | ssh-keygen -lf -) or known_hosts_file instead');
      }
    }
  }
  const missingRetention = new Set<string>();
  for (const [name, t] of Object.entries(targets)) {
    if (!isRecord(t)) continue;
    const at: FieldPath = ['targets', name];
    const used = storages ? checkStorageRefs(t.storage, storages, [...at, 'storage'], report) : [];
    let schedule: Record<string, unknown> | undefined;
    let schedulePath: FieldPath = [...at, 'schedule'];
    if (typeof t.schedule === 'string') {
      schedule = isRecord(schedules[t.schedule]) ? schedules[t.schedule] as Record<string, unknown> : undefined;
      if (!(t.schedule in schedules)) {
        const names = Object.keys(schedules);
        report('error', 'semantic.unknown_schedule', schedulePath, `unknown schedule "${t.schedule}"${didYouMean(t.schedule, names) || declared(names)}`);
      }
      schedulePath = ['schedules', t.schedule];
    } else if (isRecord(t.schedule)) {
      schedule = t.schedule;
      checkSchedule(schedule, schedulePath, report);
    }
    // A schedule without retention keeps nothing, unless every storage of the target brings its own.
    if (schedule && schedule.retention === undefined && storages && used.some((s) => !isRecord(storages[s]) || (storages[s] as Record<string, unknown>).retention === undefined)) {
      const key = formatPath(schedulePath);
      if (!missingRetention.has(key)) {
        missingRetention.add(key);
        report('error', 'semantic.retention_keeps_nothing', schedulePath, `has no retention, so target "${name}" would keep no backups; add e.g. retention: { keep_daily: 7 }`, 'key');
      }
    }
    if (t.engine === 'elasticsearch' && t.mode === 'slm' && schedule && typeof schedule.cron === 'string') {
      // SLM keeps by age and count only, and runs in UTC: say what it cannot express, where.
      const cron = cronToSlm({ cron: schedule.cron, timezone: typeof schedule.timezone === 'string' ? schedule.timezone : 'UTC' });
      if (!cron.ok) report('error', 'semantic.slm_schedule', [...at, 'mode'], cron.error);
      const retention = isRecord(schedule.retention) ? retentionToSlm(schedule.retention as RetentionRules, schedule.cron) : undefined;
      if (retention && !retention.ok) report('error', 'semantic.slm_retention', [...at, 'mode'], retention.error);
    }
    if (t.engine === 'couchdb' && t.continuous === true) {
      report('warning', 'semantic.continuous_replication', [...at, 'continuous'],
        'the runbook warns that "continuous replication severely impacts performance"; leave it off and bkp reruns a one-shot replication on each scheduled run');
    }
  }
  return out;
}

type Report = (severity: Diagnostic['severity'], code: string, path: FieldPath, message: string, part?: 'key' | 'value') => void;

function declared(names: string[]): string {
  return names.length ? ` (declared: ${names.join(', ')})` : ' (none is declared)';
}

/** Checks storage names; returns the storages the target uses (default: the first declared). */
function checkStorageRefs(ref: unknown, storages: Record<string, unknown>, at: FieldPath, report: Report): string[] {
  const names = Object.keys(storages);
  const refs: [string, FieldPath][] = typeof ref === 'string' ? [[ref, at]]
    : Array.isArray(ref) ? ref.flatMap((r, i): [string, FieldPath][] => (typeof r === 'string' ? [[r, [...at, i]]] : []))
    : ref === undefined && names[0] !== undefined ? [[names[0], at]] : [];
  for (const [name, p] of refs) {
    if (!(name in storages)) report('error', 'semantic.unknown_storage', p, `unknown storage "${name}"${didYouMean(name, names) || declared(names)}`);
  }
  return refs.map(([name]) => name).filter((n) => n in storages);
}

function checkSchedule(s: Record<string, unknown>, at: FieldPath, report: Report): void {
  const tz = typeof s.timezone === 'string' ? s.timezone : 'UTC';
  const tzOk = scheduleLibs().zone.isValidZone(tz);
  if (!tzOk) {
    const hint = didYouMean(tz, timeZones()) || ' (use an IANA name such as Europe/Paris, or UTC)';
    report('error', 'semantic.unknown_timezone', [...at, 'timezone'], `unknown time zone "${tz}"${hint}`);
  }
  if (typeof s.cron === 'string') {
    const problem = cronProblem(s.cron, tzOk ? tz : 'UTC');
    if (problem) report('error', 'semantic.bad_cron', [...at, 'cron'], `invalid cron expression "${s.cron}": ${problem}`);
  }
  checkRetention(s.retention, [...at, 'retention'], report);
}

const CRON_MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

function cronProblem(cron: string, tz: string): string | undefined {
  const expr = cron.trim();
  const fields = expr.split(/\s+/).length;
  // cron-parser also takes 4 or 6 fields; crontab and Kubernetes (bkp export) take 5.
  if (!CRON_MACROS.has(expr) && fields !== 5) return `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields}`;
  try {
    scheduleLibs().cron.parse(expr, { tz });
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function checkRetention(r: unknown, at: FieldPath, report: Report): void {
  // A misspelt or mistyped rule already has its schema error; "keeps nothing" would only echo it.
  if (!isRecord(r) || !Object.entries(r).every(([k, v]) => RULE_TYPES[k] === typeof v)) return;
  if (!keepsScheduledBackups(r)) {
    report('error', 'semantic.retention_keeps_nothing', at,
      'keeps no scheduled backups; set at least one of keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly or keep_within* above 0', 'key');
  }
}

const RULE_TYPES: Record<string, string> = Object.fromEntries([
  ...[...SCHEDULED_COUNTS, 'keep_on_demand'].map((k) => [k, 'number']),
  ...SCHEDULED_WITHINS.map((k) => [k, 'string']),
]);

let zones: string[] | undefined;
function timeZones(): string[] {
  zones ??= ['UTC', ...Intl.supportedValuesOf('timeZone')];
  return zones;
}

const SECTION_NOUN: Record<string, string> = { targets: 'target', storage: 'storage', schedules: 'schedule' };

/** Duplicate keys found while reading: `duplicate target "app" (first defined at line 3)`. */
export function duplicateDiagnostics(dups: readonly DuplicateKey[]): Diagnostic[] {
  return dups.map((d) => {
    const noun = d.parent.length === 1 ? SECTION_NOUN[String(d.parent[0])] : undefined;
    const where = noun || d.parent.length === 0 ? '' : ` in ${formatPath(d.parent)}`;
    return {
      severity: 'error',
      code: 'semantic.duplicate_key',
      summary: `duplicate ${noun ?? 'key'} "${d.key}"${where} (first defined at line ${d.firstLine})`,
      location: d.location,
      path: formatPath([...d.parent, d.key]),
    };
  });
}
