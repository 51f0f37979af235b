import path from 'node:path';
import type { YamlSource } from './read-yaml.js';
import { IMPLICIT_STORAGE } from './semantic.js';
import { isRecord } from './tree.js';
import type { EngineName, Hooks, Policy, RetentionRules, Schedule, StorageConfig, Target } from './types.js';

export interface NormalizeContext {
  file: string;
  /** Folder of the policy file: relative paths are resolved against it, as docker compose does. */
  baseDir: string;
  digest: string;
  source: YamlSource;
}

type Obj = Record<string, unknown>;

/** Fields every target has; the rest are the engine's own settings. */
const COMMON_TARGET_FIELDS = new Set(['engine', 'storage', 'schedule', 'hooks']);
/** sftp paths on this machine, resolved like `local.path` since storage code never sees the policy's folder. */
const LOCAL_FILE_OPTIONS = ['private_key_file', 'known_hosts_file'];
const DEFAULT_HOOK_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_HISTORY = { successful: 30, failed: 10 };

/**
 * Turns a value that passed the schema and semantic checks into a `Policy`, filling defaults.
 * `value` is interpolated; `raw` is the same document as written, for `displaySettings`.
 */
export function normalizePolicy(value: Obj, raw: Obj, ctx: NormalizeContext): Policy {
  const storages = normalizeStorages(value.storage, ctx);
  const firstStorage = Object.keys(storages)[0] ?? IMPLICIT_STORAGE;
  const schedules: Record<string, Schedule> = {};
  for (const [name, s] of Object.entries(obj(value.schedules))) schedules[name] = schedule(obj(s), name);
  const rawTargets = obj(raw.targets);
  const targets: Record<string, Target> = {};
  for (const [name, t] of Object.entries(obj(value.targets))) {
    const target = obj(t);
    const ref = target.schedule;
    targets[name] = {
      name,
      engine: target.engine as EngineName,
      storage: typeof target.storage === 'string' ? [target.storage] : Array.isArray(target.storage) ? target.storage.map(String) : [firstStorage],
      // A copy per target: planners may annotate a schedule without touching the template.
      schedule: typeof ref === 'string' ? { ...schedules[ref]!, retention: { ...schedules[ref]!.retention } } : schedule(obj(ref), undefined),
      hooks: hooks(obj(target.hooks)),
      settings: engineFields(target),
      displaySettings: engineFields(obj(rawTargets[name])),
      baseDir: ctx.baseDir,
      location: ctx.source.locate(['targets', name], 'key'),
    };
  }
  const history = obj(value.history);
  return {
    version: 1,
    file: ctx.file,
    digest: ctx.digest,
    storages,
    schedules,
    targets,
    history: {
      successful: typeof history.successful === 'number' ? history.successful : DEFAULT_HISTORY.successful,
      failed: typeof history.failed === 'number' ? history.failed : DEFAULT_HISTORY.failed,
    },
  };
}

function obj(v: unknown): Obj {
  return isRecord(v) ? v : {};
}

function normalizeStorages(section: unknown, ctx: NormalizeContext): Record<string, StorageConfig> {
  if (section === undefined) {
    return { [IMPLICIT_STORAGE]: { name: IMPLICIT_STORAGE, type: 'local', path: path.resolve(ctx.baseDir, 'backups') } };
  }
  const out: Record<string, StorageConfig> = {};
  for (const [name, s] of Object.entries(obj(section))) {
    const { type, retention, encryption, compression, ...options } = obj(s);
    const base = {
      name,
      ...(isRecord(retention) ? { retention: retention as RetentionRules } : {}),
      ...(isRecord(encryption) ? { encryption: { key: String(encryption.key) } } : {}),
      ...(typeof compression === 'string' ? { compression: compression as StorageConfig['compression'] } : {}),
      location: ctx.source.locate(['storage', name], 'key'),
    };
    if (type === 'local') {
      out[name] = { ...base, type: 'local', path: path.resolve(ctx.baseDir, String(options.path)) };
    } else {
      for (const k of LOCAL_FILE_OPTIONS) {
        if (typeof options[k] === 'string') options[k] = path.resolve(ctx.baseDir, options[k]);
      }
      out[name] = { ...base, type: type as 'sftp' | 's3', options };
    }
  }
  return out;
}

function schedule(s: Obj, name: string | undefined): Schedule {
  return {
    name,
    cron: String(s.cron).trim(),
    timezone: typeof s.timezone === 'string' ? s.timezone : 'UTC',
    retention: { ...obj(s.retention) } as RetentionRules,
  };
}

function hooks(h: Obj): Hooks {
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  return {
    before: list(h.before),
    after: list(h.after),
    // Only when written: a policy without post-restore scripts normalizes as it did before.
    ...(h.after_restore !== undefined ? { after_restore: list(h.after_restore) } : {}),
    timeoutMs: typeof h.timeout === 'string' ? durationMs(h.timeout) : DEFAULT_HOOK_TIMEOUT_MS,
  };
}

/** `1h30m`, `5m`, `30s` (the schema checked the form). */
export function durationMs(d: string): number {
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000 };
  let ms = 0;
  for (const [, n, u] of d.matchAll(/(\d+)([hms])/g)) ms += Number(n) * unit[u!]!;
  return ms;
}

function engineFields(t: Obj): Record<string, unknown> {
  return Object.fromEntries(Object.entries(t).filter(([k]) => !COMMON_TARGET_FIELDS.has(k)));
}
