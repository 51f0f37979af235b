import { createHash } from 'node:crypto';
import path from 'node:path';
import { stringify } from 'yaml';
import type { LocalStorageConfig, Policy, Target } from '../policy/types.js';
import { isRecord } from '../policy/tree.js';
import { isPlainSetting } from '../policy/interpolate.js';
import { cronFields, policyReferences, referencesIn, targetReferences, unsupportedCron } from './export-crontab.js';

/**
 * `bkp export k8s`: one `batch/v1` CronJob per target that runs `bkp apply --target T` in a
 * container. Pure: the policy and the options in, multi-document YAML out. Secrets are never
 * read: each `${env:NAME}` becomes an env var taken from a Secret by `secretKeyRef`.
 */
export interface K8sOptions {
  /** The bkp image; its entrypoint must be `bkp`. */
  image: string;
  namespace: string;
  /** ConfigMap holding the policy under the key `bkp.yaml`. */
  configMap: string;
  /** Secret holding one key per `${env:NAME}` the policy references, named NAME. */
  secret: string;
  /** How late a missed run may still start (default 3600 s). */
  startingDeadlineSeconds?: number;
  /** PersistentVolumeClaim that holds local storages (default `bkp-backups`). */
  backupsClaim?: string;
  /** The policy document as written (parsed YAML), as for `renderCrontab`: finds hook and storage variables, and local paths as written. */
  written?: unknown;
}

/** Where the policy is in the container; relative paths in it resolve against this folder. */
export const POLICY_DIR = '/etc/bkp';
const POLICY_KEY = 'bkp.yaml';
const DEFAULT_DEADLINE = 3600;
const DEFAULT_CLAIM = 'bkp-backups';
/** A CronJob's name is at most 52 characters: the Jobs it creates append 11 (`-<minutes>`). */
const MAX_NAME = 52;
/** History limits above this keep many finished Jobs and their Pods around for little use. */
const LARGE_HISTORY = 100;

export function renderK8s(policy: Policy, opts: K8sOptions): string {
  const targets = Object.values(policy.targets).sort((a, b) => a.name.localeCompare(b.name));
  const names = cronJobNames(targets.map((t) => t.name));
  const all = policyReferences(policy, opts.written);
  const claim = opts.backupsClaim ?? DEFAULT_CLAIM;
  const usesLocal = targets.some((t) => localStorages(policy, t).length > 0);
  const { successful, failed } = policy.history;

  const header = [
    `bkp CronJobs for the policy ${path.basename(policy.file)} (sha256 ${policy.digest.slice(0, 12)}), written by \`bkp export k8s\`.`,
    'Do not edit: change the policy and export again. Before `kubectl apply -f`:',
    `  kubectl -n ${opts.namespace} create configmap ${opts.configMap} --from-file=${POLICY_KEY}=${path.basename(policy.file)}`,
    all.env.length > 0
      ? `  kubectl -n ${opts.namespace} create secret generic ${opts.secret} ${all.env.map((n) => `--from-literal=${n}=…`).join(' ')}`
      : `  (the policy references no \${env:…}: no Secret is needed)`,
    ...(usesLocal
      ? [
        `  a PersistentVolumeClaim "${claim}" for local storage: each local storage is its sub-folder (subPath = storage name),`,
        '  mounted where the policy puts it. Use ReadWriteMany if the Jobs may run on different nodes.',
      ]
      : []),
    'bkp reads the whole policy on every run, so every Job gets every variable the policy references, not only',
    "its target's. The policy is mounted at /etc/bkp/bkp.yaml: its relative paths resolve against /etc/bkp.",
    `History limits come from the policy's history (successful ${successful}, failed ${failed}).${successful > LARGE_HISTORY || failed > LARGE_HISTORY ? ' Kubernetes caps neither, but each finished Job keeps its Pod: large values are wasteful.' : ''}`,
    ...(all.files.length > 0 ? [`The policy reads files (\${file:…}): ${all.files.join(' ')}; mount them under /etc/bkp (e.g. from a Secret).`] : []),
  ];

  const docs = targets.map((t) => {
    const name = names.get(t.name)!;
    const uses = targetReferences(policy, t, opts.written);
    const locals = localStorages(policy, t).map((s) => {
      const where = containerPath(policy, t, s, opts.written);
      return { storage: s.name, mountPath: where.path, note: where.note };
    });
    const comments = [
      `target ${t.name} (${t.engine}), ${t.schedule.name ? `schedule ${t.schedule.name}` : 'inline schedule'}: ${t.schedule.cron} in ${t.schedule.timezone}`,
      ...(name !== `bkp-${t.name}` ? [`metadata.name ${name}: "bkp-${t.name}" made DNS-1123 safe (lowercase, "_" becomes "-", at most ${MAX_NAME} characters)`] : []),
      `uses ${uses.env.length ? uses.env.join(', ') : 'no variables'}; storage ${t.storage.join(', ')}`,
      ...locals.map((l) => `local storage ${l.storage}: PVC ${claim}, sub-folder ${l.storage}, at ${l.mountPath}${l.note ? `; ${l.note}` : ''}`),
      ...(t.engine === 'files' ? ['files engine: its paths are read inside the container; mount them there (not generated)'] : []),
      ...(t.hooks.before.length + t.hooks.after.length > 0 ? ['hooks run inside the container: the image must have the tools they call'] : []),
      ...(unsupportedCron(t.schedule.cron) ? [`WARNING: ${unsupportedCron(t.schedule.cron)}; Kubernetes cannot run this schedule as the policy means it`] : []),
    ];
    const labels = { 'app.kubernetes.io/name': 'bkp', 'app.kubernetes.io/instance': labelValue(t.name, name) };
    const mounts: Record<string, unknown>[] = [{ name: 'policy', mountPath: `${POLICY_DIR}/${POLICY_KEY}`, subPath: POLICY_KEY, readOnly: true }];
    const seen = new Set<string>();
    for (const l of locals) {
      if (seen.has(l.mountPath)) continue;
      seen.add(l.mountPath);
      mounts.push({ name: 'backups', mountPath: l.mountPath, subPath: l.storage });
    }
    const volumes: Record<string, unknown>[] = [{ name: 'policy', configMap: { name: opts.configMap } }];
    if (locals.length > 0) volumes.push({ name: 'backups', persistentVolumeClaim: { claimName: claim } });
    const container: Record<string, unknown> = {
      name: 'bkp',
      image: opts.image,
      args: ['apply', '-c', `${POLICY_DIR}/${POLICY_KEY}`, '--target', t.name, '--auto-approve', '--json'],
      ...(all.env.length > 0 ? { env: all.env.map((n) => ({ name: n, valueFrom: { secretKeyRef: { name: opts.secret, key: n } } })) } : {}),
      volumeMounts: mounts,
    };
    const cronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name, namespace: opts.namespace, labels },
      spec: {
        schedule: cronFields(t.schedule.cron),
        timeZone: t.schedule.timezone,
        concurrencyPolicy: 'Forbid',
        startingDeadlineSeconds: opts.startingDeadlineSeconds ?? DEFAULT_DEADLINE,
        successfulJobsHistoryLimit: successful,
        failedJobsHistoryLimit: failed,
        jobTemplate: {
          metadata: { labels },
          spec: {
            // bkp's next scheduled run retries; a failed backup is not retried at once by Kubernetes.
            backoffLimit: 0,
            template: {
              metadata: { labels },
              spec: { restartPolicy: 'Never', containers: [container], volumes },
            },
          },
        },
      },
    };
    return `---\n${comments.map((c) => `# ${c}`).join('\n')}\n${stringify(cronJob, { lineWidth: 0, aliasDuplicateObjects: false })}`;
  });
  return `${header.map((h) => `# ${h}`.trimEnd()).join('\n')}\n${docs.join('')}`;
}

/** The local storages a target writes to. */
function localStorages(policy: Policy, t: Target): LocalStorageConfig[] {
  return t.storage.map((s) => policy.storages[s]).filter((s): s is LocalStorageConfig => s?.type === 'local');
}

/**
 * Where a local storage is inside the container: its path as written, resolved against the
 * policy's folder there (/etc/bkp). A path written with `${env:…}` resolves in the container to
 * whatever the Secret gives, which a mountPath cannot follow: when every variable in it names a
 * place (`BACKUP_DIR`: printable, see `isPlainSetting`), the value it has here is used and said
 * to be; otherwise nothing of it is printed and a fixed folder stands in, with a warning.
 */
function containerPath(policy: Policy, t: Target, s: LocalStorageConfig, written: unknown): { path: string; note?: string } {
  const section = isRecord(written) ? written.storage : undefined;
  const entry = isRecord(section) ? section[s.name] : undefined;
  const asWritten = isRecord(entry) ? entry.path : undefined;
  if (typeof asWritten === 'string' && !asWritten.includes('${')) return { path: path.posix.resolve(POLICY_DIR, asWritten) };
  const refs = referencesIn(asWritten);
  if (typeof asWritten === 'string' && (refs.files.length > 0 || !refs.env.every(isPlainSetting))) {
    return { path: `/var/lib/bkp/${s.name}`, note: `WARNING: its path is written as ${asWritten}: mounted at /var/lib/bkp/${s.name}; make the variables give that path in the container` };
  }
  const rel = path.relative(t.baseDir, s.path);
  const inside = rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  const where = inside ? path.posix.join(POLICY_DIR, ...rel.split(path.sep)) : s.path;
  return typeof asWritten === 'string'
    ? { path: where, note: `its path is written as ${asWritten}: mounted where that resolves here (${s.path}); the Secret must give the same value` }
    : { path: where };
}

/**
 * `bkp-<target>` as a DNS-1123 name: lowercase, `_` becomes `-` (target names allow `_`, Kubernetes
 * names do not), at most 52 characters, ending in a letter or digit. When that changes the name so
 * that two targets would collide, or cuts it short, a hash of the target name keeps it unique.
 */
export function cronJobNames(targets: string[]): Map<string, string> {
  const base = (t: string) => `bkp-${t.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.replace(/-+$/, '');
  const counts = new Map<string, number>();
  for (const t of targets) counts.set(base(t), (counts.get(base(t)) ?? 0) + 1);
  const out = new Map<string, string>();
  for (const t of targets) {
    const b = base(t);
    if (b.length <= MAX_NAME && counts.get(b) === 1) {
      out.set(t, b);
      continue;
    }
    const hash = createHash('sha256').update(t).digest('hex').slice(0, 8);
    out.set(t, `${b.slice(0, MAX_NAME - hash.length - 1).replace(/-+$/, '')}-${hash}`);
  }
  return out;
}

/** Label values: at most 63 of `[A-Za-z0-9_.-]`, starting and ending alphanumeric; else the CronJob's name without `bkp-`. */
function labelValue(target: string, name: string): string {
  return /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/.test(target) ? target : name.slice('bkp-'.length);
}
