import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { clearSecrets } from '../src/core/secrets.js';
import { loadPolicy, loadPolicyFromText } from '../src/policy/load.js';
import { readYaml } from '../src/policy/read-yaml.js';
import type { Policy } from '../src/policy/types.js';
import { cronFields, referencesIn, renderCrontab, unsupportedCron } from '../src/render/export-crontab.js';
import { cronJobNames, renderK8s } from '../src/render/export-k8s.js';
import { exportCommand, exportDefaults } from '../src/cli/commands/export.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, 'test', 'fixtures', 'export');
const POLICY = path.join(DIR, 'bkp.yaml');

/** Known values for every variable the fixture references: none of them may appear in an export. */
const SECRETS: Record<string, string> = {
  PG_PASSWORD: 'pg-S3cret-value',
  APP_TOKEN: 'app-T0ken-value',
  COUCH_URL: 'http://admin:couch-Pa55@couch.internal:5984',
  S3_ENDPOINT: 'http://minio.internal:9000',
  BUCKET_KEY: 'bucket-K3y-value',
};

/**
 * The real Kubernetes CronJob schema, vendored: github.com/yannh/kubernetes-json-schema, path
 * master-standalone-strict/cronjob-batch-v1.json, commit b21b5fc193af54c09295e3572ef21cc76baa0c6b.
 * The upstream file is 750 KB of mostly descriptions; the fixture keeps every node on the paths
 * bkp writes (full property lists, types, required, additionalProperties: false) and says so in
 * its `$comment`. Its `$schema` is the draft-04-era "http://json-schema.org/schema#", which ajv
 * does not know: it is dropped before compiling, and `format` (int32, date-time…) is not checked.
 */
function cronJobValidator() {
  const schema = JSON.parse(readFileSync(path.join(DIR, 'cronjob-batch-v1.schema.json'), 'utf8')) as Record<string, unknown>;
  delete schema.$schema;
  return new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
}

async function load(): Promise<{ policy: Policy; written: unknown }> {
  const r = await loadPolicy(POLICY, { env: SECRETS });
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return { policy: r.policy!, written: readYaml(readFileSync(POLICY, 'utf8'), POLICY).value };
}

function golden(name: string, text: string): void {
  const file = path.join(DIR, name);
  // BKP_UPDATE_GOLDEN=1 rewrites the expected files (review the git diff afterwards).
  if (process.env.BKP_UPDATE_GOLDEN) writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

function expectNoSecrets(text: string): void {
  for (const [name, value] of Object.entries(SECRETS)) {
    expect(text.includes(value), `${name}'s value appears in the export`).toBe(false);
  }
  expect(text).not.toContain('couch-Pa55');
}

const CRONTAB_OPTS = { bkpCommand: '/usr/local/bin/bkp', configPath: '/srv/bkp/bkp.yaml', workdir: '/srv/bkp', logDir: '/var/log/bkp' };
const K8S_OPTS = { image: 'ghcr.io/bkp-dev/bkp:0.0.0-test', namespace: 'backups', configMap: 'bkp-policy', secret: 'bkp-secrets' };

beforeEach(() => clearSecrets());

describe('bkp export crontab', () => {
  it('matches the golden file', async () => {
    const { policy, written } = await load();
    const text = renderCrontab(policy, { ...CRONTAB_OPTS, written });
    golden('crontab.expected', text);
    expectNoSecrets(text);
  });

  it('groups targets under one CRON_TZ line per zone, UTC first, and names the variables each needs', async () => {
    const { policy, written } = await load();
    const lines = renderCrontab(policy, { ...CRONTAB_OPTS, written }).split('\n');
    const tz = lines.filter((l) => l.startsWith('CRON_TZ='));
    expect(tz).toEqual(['CRON_TZ=UTC', 'CRON_TZ=Europe/Paris']);
    const jobs = lines.filter((l) => /^[0-9*@]/.test(l));
    expect(jobs).toEqual([
      '30 */6 * * * cd /srv/bkp && mkdir -p /var/log/bkp && /usr/local/bin/bkp apply -c /srv/bkp/bkp.yaml --target metrics --auto-approve >> /var/log/bkp/metrics.log 2>&1',
      '15 2 * * * cd /srv/bkp && mkdir -p /var/log/bkp && /usr/local/bin/bkp apply -c /srv/bkp/bkp.yaml --target app_files --auto-approve >> /var/log/bkp/app_files.log 2>&1',
      '0 23 * * * cd /srv/bkp && mkdir -p /var/log/bkp && /usr/local/bin/bkp apply -c /srv/bkp/bkp.yaml --target store --auto-approve >> /var/log/bkp/store.log 2>&1',
    ]);
    // Each zone's block holds its own targets only.
    const utc = lines.slice(lines.indexOf('CRON_TZ=UTC'), lines.indexOf('CRON_TZ=Europe/Paris')).join('\n');
    expect(utc).toContain('--target metrics');
    expect(utc).not.toContain('--target store');
    // hooks (app_files), storage (metrics: bucket endpoint and key) and engine settings (store) all count.
    expect(lines).toContain('# app_files (files, inline schedule: 15 2 * * * Europe/Paris; storage local): needs APP_TOKEN');
    expect(lines).toContain('# metrics (couchdb, schedule sixhourly: 30 */6 * * * UTC; storage bucket): needs BUCKET_KEY, COUCH_URL, S3_ENDPOINT');
    expect(lines).toContain('# store (postgres, schedule nightly: 0 23 * * * Europe/Paris; storage local, bucket): needs BUCKET_KEY, PG_PASSWORD, S3_ENDPOINT');
    expect(lines).toContain('#   APP_TOKEN BUCKET_KEY COUCH_URL PG_PASSWORD S3_ENDPOINT');
  });

  it('defaults the working folder to the policy folder and logs under it; quotes paths and escapes % for cron', async () => {
    const { policy } = await load();
    const text = renderCrontab(policy, { bkpCommand: 'bkp', configPath: '/srv/my backups/50%/bkp.yaml' });
    expect(text).toContain("cd '/srv/my backups/50\\%' && mkdir -p '/srv/my backups/50\\%/logs' && bkp apply -c '/srv/my backups/50\\%/bkp.yaml' --target store --auto-approve >> '/srv/my backups/50\\%/logs/store.log' 2>&1");
    // Without the written document, only engine settings are searched (hooks and storages are interpolated in a Policy).
    expect(text).toContain('# app_files (files, inline schedule: 15 2 * * * Europe/Paris; storage local)\n');
  });
});

describe('bkp export k8s', () => {
  it('matches the golden file', async () => {
    const { policy, written } = await load();
    const text = renderK8s(policy, { ...K8S_OPTS, written });
    golden('k8s.expected', text);
    expectNoSecrets(text);
  });

  it('every document is a CronJob valid against the Kubernetes CronJob schema', async () => {
    const { policy, written } = await load();
    const validate = cronJobValidator();
    for (const opts of [{ ...K8S_OPTS, written }, K8S_OPTS, { ...K8S_OPTS, startingDeadlineSeconds: 600, backupsClaim: 'other' }]) {
      const docs = parseAllDocuments(renderK8s(policy, opts));
      expect(docs).toHaveLength(3);
      for (const doc of docs) {
        expect(doc.errors).toEqual([]);
        const value: unknown = doc.toJS();
        const ok = validate(value);
        expect(ok, JSON.stringify(validate.errors, null, 2)).toBe(true);
      }
    }
  });

  it('the schema really is strict: a typo or a wrong type is rejected', () => {
    const validate = cronJobValidator();
    const job = (spec: Record<string, unknown>) => ({
      apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'x' },
      spec: { schedule: '0 1 * * *', jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', ...spec }] } } } } },
    });
    expect(validate(job({}))).toBe(true);
    expect(validate(job({ env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'A' } } }] }))).toBe(true);
    expect(validate(job({ env: [{ name: 'A', valueFrom: { secretRef: { name: 's', key: 'A' } } }] }))).toBe(false);
    expect(validate(job({ env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's' } } }] }))).toBe(false);
    expect(validate(job({ volumeMount: [] }))).toBe(false);
    expect(validate({ ...job({}), spec: { ...job({}).spec, timezone: 'UTC' } })).toBe(false);
    expect(validate({ ...job({}), spec: { ...job({}).spec, successfulJobsHistoryLimit: '3' } })).toBe(false);
  });

  it('each CronJob carries the schedule, zone, limits and secrets of its target', async () => {
    const { policy, written } = await load();
    const docs = parseAllDocuments(renderK8s(policy, { ...K8S_OPTS, written })).map((d) => d.toJS() as CronJob);
    expect(docs.map((d) => d.metadata.name)).toEqual(['bkp-app-files', 'bkp-metrics', 'bkp-store']);
    const byName = new Map(docs.map((d) => [d.metadata.name, d]));
    const store = byName.get('bkp-store')!;
    expect(store.metadata).toEqual({ name: 'bkp-store', namespace: 'backups', labels: { 'app.kubernetes.io/name': 'bkp', 'app.kubernetes.io/instance': 'store' } });
    expect(store.spec).toMatchObject({
      schedule: '0 23 * * *', timeZone: 'Europe/Paris', concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 14, failedJobsHistoryLimit: 5,
    });
    expect(byName.get('bkp-metrics')!.spec).toMatchObject({ schedule: '30 */6 * * *', timeZone: 'UTC' });
    const job = store.spec.jobTemplate.spec;
    expect(job.backoffLimit).toBe(0);
    expect(job.template.spec.restartPolicy).toBe('Never');
    const c = job.template.spec.containers[0]!;
    expect(c.name).toBe('bkp');
    expect(c.image).toBe(K8S_OPTS.image);
    expect(c.args).toEqual(['apply', '-c', '/etc/bkp/bkp.yaml', '--target', 'store', '--auto-approve', '--json']);
    // bkp interpolates the whole policy on each run: every job gets every variable, from the Secret.
    expect(c.env).toEqual(['APP_TOKEN', 'BUCKET_KEY', 'COUCH_URL', 'PG_PASSWORD', 'S3_ENDPOINT'].map((n) => ({ name: n, valueFrom: { secretKeyRef: { name: 'bkp-secrets', key: n } } })));
    // The policy from the ConfigMap; local storage `./backups` (relative to the policy) from the PVC.
    expect(c.volumeMounts).toEqual([
      { name: 'policy', mountPath: '/etc/bkp/bkp.yaml', subPath: 'bkp.yaml', readOnly: true },
      { name: 'backups', mountPath: '/etc/bkp/backups', subPath: 'local' },
    ]);
    expect(job.template.spec.volumes).toEqual([
      { name: 'policy', configMap: { name: 'bkp-policy' } },
      { name: 'backups', persistentVolumeClaim: { claimName: 'bkp-backups' } },
    ]);
    // metrics writes to s3 only: no claim.
    const metrics = byName.get('bkp-metrics')!.spec.jobTemplate.spec.template.spec;
    expect(metrics.volumes).toEqual([{ name: 'policy', configMap: { name: 'bkp-policy' } }]);
    // The target name `app_files` keeps its `_` where Kubernetes allows it (label value, args).
    const app = byName.get('bkp-app-files')!;
    expect(app.metadata.labels['app.kubernetes.io/instance']).toBe('app_files');
    expect(app.spec.jobTemplate.spec.template.spec.containers[0]!.args).toContain('app_files');
  });

  it('makes DNS-1123 names of at most 52 characters, unique even when two targets map to one name', () => {
    const long = `a${'x'.repeat(60)}`;
    const names = cronJobNames(['db', 'my_db', 'my-db', long, 'ends_']);
    expect(names.get('db')).toBe('bkp-db');
    expect(names.get('my_db')).toMatch(/^bkp-my-db-[0-9a-f]{8}$/);
    expect(names.get('my-db')).toMatch(/^bkp-my-db-[0-9a-f]{8}$/);
    expect(names.get('my_db')).not.toBe(names.get('my-db'));
    expect(names.get(long)!.length).toBeLessThanOrEqual(52);
    expect(names.get('ends_')).toBe('bkp-ends');
    for (const n of names.values()) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('absolute local paths are mounted where they are; a policy without secrets needs no env', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bkp-export-'));
    const file = path.join(dir, 'bkp.yaml');
    const text = [
      'version: 1',
      'storage: { disk: { type: local, path: /var/backups/bkp } }',
      'targets:',
      '  etc: { engine: files, paths: [/etc], schedule: { cron: "0 4 * * ?", retention: { keep_daily: 3 } } }',
    ].join('\n');
    const { policy } = await loadPolicyFromText(text, file, { env: {} });
    const out = renderK8s(policy!, { ...K8S_OPTS, written: readYaml(text, file).value });
    const [doc] = parseAllDocuments(out).map((d) => d.toJS() as CronJob);
    const c = doc!.spec.jobTemplate.spec.template.spec.containers[0]!;
    expect(c.env).toBeUndefined();
    expect(c.volumeMounts[1]).toEqual({ name: 'backups', mountPath: '/var/backups/bkp', subPath: 'disk' });
    expect(doc!.spec.schedule).toBe('0 4 * * *');
    expect(doc!.spec.timeZone).toBe('UTC');
    expect(out).toContain('no Secret is needed');
    expect(cronJobValidator()(doc)).toBe(true);
  });
});

describe('bkp export k8s: local paths written with ${env:…}', () => {
  it('a place-named variable is mounted where it resolves here; any other is never printed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bkp-export-'));
    const file = path.join(dir, 'bkp.yaml');
    const text = [
      'version: 1',
      'storage:',
      '  plain: { type: local, path: "${env:BACKUP_DIR}/bkp" }',
      '  hidden: { type: local, path: "${env:VAULT_TOKEN_PATH}" }',
      'targets:',
      '  a: { engine: files, paths: [/etc], storage: plain, schedule: { cron: "0 4 * * *", retention: { keep_daily: 3 } } }',
      '  b: { engine: files, paths: [/etc], storage: hidden, schedule: { cron: "0 5 * * *", retention: { keep_daily: 3 } } }',
    ].join('\n');
    const env = { BACKUP_DIR: '/srv/backups', VAULT_TOKEN_PATH: '/run/s3cr3t-t0ken-dir' };
    const { policy } = await loadPolicyFromText(text, file, { env });
    const out = renderK8s(policy!, { ...K8S_OPTS, written: readYaml(text, file).value });
    const [a, b] = parseAllDocuments(out).map((d) => d.toJS() as CronJob);
    expect(a!.spec.jobTemplate.spec.template.spec.containers[0]!.volumeMounts[1]).toEqual({ name: 'backups', mountPath: '/srv/backups/bkp', subPath: 'plain' });
    expect(out).toContain('its path is written as ${env:BACKUP_DIR}/bkp: mounted where that resolves here (/srv/backups/bkp); the Secret must give the same value');
    expect(b!.spec.jobTemplate.spec.template.spec.containers[0]!.volumeMounts[1]).toEqual({ name: 'backups', mountPath: '/var/lib/bkp/hidden', subPath: 'hidden' });
    expect(out).toContain('WARNING: its path is written as ${env:VAULT_TOKEN_PATH}');
    expect(out).not.toContain('s3cr3t-t0ken-dir');
    const validate = cronJobValidator();
    for (const doc of [a, b]) expect(validate(doc)).toBe(true);
  });
});

describe('export helpers', () => {
  it('finds ${env:…} and ${file:…} references as interpolation reads them, never $${…} or shell ${…}', () => {
    expect(referencesIn({ a: 'x${env:A}y${env: B }', b: ['$${env:NOT}', '${HOME}', '${file:./key}'], c: { d: '${env:A}' }, e: 3 }))
      .toEqual({ env: ['A', 'B'], files: ['./key'] });
  });

  it('cron extensions crontab and Kubernetes lack are flagged; ? becomes *', () => {
    expect(unsupportedCron('0 23 * * *')).toBeUndefined();
    expect(unsupportedCron('0 3 * * WED')).toBeUndefined();
    expect(unsupportedCron('@daily')).toBeUndefined();
    expect(unsupportedCron('0 3 L * *')).toMatch(/day of month/);
    expect(unsupportedCron('0 3 15W * *')).toMatch(/day of month/);
    expect(unsupportedCron('0 3 * * 5#2')).toMatch(/day of week/);
    expect(unsupportedCron('0 3 * * 5L')).toMatch(/day of week/);
    expect(cronFields('0 3 ? * MON')).toBe('0 3 * * MON');
  });
});

describe('exportCommand', () => {
  let out = '';
  const saved = { ...process.env };
  beforeEach(() => {
    out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    Object.assign(process.env, SECRETS);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    for (const k of Object.keys(SECRETS)) if (saved[k] === undefined) delete process.env[k];
  });

  it('k8s: loads the policy, finds hook and storage variables in the file as written, prints YAML', async () => {
    const d = exportDefaults();
    expect(d.image).toMatch(/^ghcr\.io\/bkp-dev\/bkp:\d+\.\d+\.\d+/);
    expect(await exportCommand({ config: POLICY, format: 'k8s', ...d })).toBe(0);
    expect(parseAllDocuments(out)).toHaveLength(3);
    expect(out).toContain(`image: ${d.image}`);
    expect(out).toContain('key: APP_TOKEN');
    expectNoSecrets(out);
  });

  it('crontab: absolute config path, working folder from --workdir', async () => {
    expect(await exportCommand({ config: path.relative(process.cwd(), POLICY), format: 'crontab', ...exportDefaults(), workdir: '/srv' })).toBe(0);
    expect(out).toContain(`cd /srv && mkdir -p /srv/logs && `);
    expect(out).toContain(` apply -c ${POLICY} --target store --auto-approve`);
    expect(out).toMatch(new RegExp(`^PATH=${path.dirname(process.execPath)}:`, 'm'));
    expect(out).toContain(': needs APP_TOKEN');
    expectNoSecrets(out);
  });
});

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: unknown[];
  volumeMounts: unknown[];
}
interface CronJob {
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    schedule: string;
    timeZone: string;
    jobTemplate: { spec: { backoffLimit: number; template: { spec: { restartPolicy: string; containers: Container[]; volumes: unknown[] } } } };
  };
}
