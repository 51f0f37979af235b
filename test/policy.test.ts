import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { hasErrors } from '../src/core/diagnostics.js';
import type { Diagnostic } from '../src/core/diagnostics.js';
import { clearSecrets, redact } from '../src/core/secrets.js';
import { loadPolicy, loadPolicyFromText } from '../src/policy/load.js';
import { policySchema } from '../src/policy/schema.js';
import { isRecord } from '../src/policy/tree.js';
import type { EngineName, Policy } from '../src/policy/types.js';
import { renderDiagnostics } from '../src/render/diagnostics.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BAD = path.join(ROOT, 'test', 'fixtures', 'bad-policies');

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'bkp-policy-'));
}

/** Loads text that must be valid, failing with the diagnostics when it is not. */
async function mustLoad(text: string, file: string, env: Record<string, string> = {}): Promise<Policy> {
  const r = await loadPolicyFromText(text, file, { env });
  expect(renderDiagnostics(r.diagnostics, 'text')).toBe('');
  expect(r.policy).toBeDefined();
  return r.policy!;
}

beforeEach(() => clearSecrets());

describe('bad policies: every problem as FILE:LINE:COL: message (golden files)', () => {
  const cases = readdirSync(BAD).filter((f) => f.endsWith('.yaml')).sort();

  it('the corpus covers every kind of problem', () => {
    for (const name of [
      'syntax-error', 'duplicate-target', 'wrong-type', 'missing-field', 'unknown-key-top', 'unknown-key-storage',
      'unknown-key-target', 'unknown-key-retention', 'unknown-storage', 'unknown-schedule', 'bad-cron',
      'unknown-timezone', 'unsafe-target-name', 'retention-keeps-nothing', 'missing-env', 'missing-file', 'many-problems',
    ]) expect(cases).toContain(`${name}.yaml`);
  });

  for (const f of cases) {
    it(f, async () => {
      const { policy, diagnostics } = await loadPolicy(path.join(BAD, f), { env: {} });
      const text = `${renderDiagnostics(diagnostics, 'text').split(BAD + path.sep).join('')}\n`;
      const golden = path.join(BAD, f.replace(/\.yaml$/, '.expected'));
      // BKP_UPDATE_GOLDEN=1 rewrites the expected files (review the git diff afterwards).
      if (process.env.BKP_UPDATE_GOLDEN) writeFileSync(golden, text);
      expect(text).toBe(readFileSync(golden, 'utf8'));
      expect(diagnostics.length).toBeGreaterThan(0);
      for (const d of diagnostics) {
        expect(d.location?.file).toBe(path.join(BAD, f));
        expect(d.location!.line).toBeGreaterThanOrEqual(1);
        expect(d.location!.col).toBeGreaterThanOrEqual(1);
      }
      // A policy comes back only when nothing worse than a warning was found.
      expect(policy === undefined).toBe(hasErrors(diagnostics));
    });
  }

  it('reports every problem of a file at once, in file order', async () => {
    const { diagnostics } = await loadPolicy(path.join(BAD, 'many-problems.yaml'), { env: {} });
    const codes = diagnostics.map((d) => d.code);
    expect(codes).toEqual(expect.arrayContaining([
      'policy.interpolation', 'semantic.unknown_storage', 'semantic.continuous_replication', 'schema.unknown_key',
      'schema.bad_name', 'semantic.bad_cron', 'semantic.retention_keeps_nothing',
    ]));
    const lines = diagnostics.map((d) => d.location!.line);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it('a missing policy file is one diagnostic that names it', async () => {
    const file = path.join(tempDir(), 'nope.yaml');
    const r = await loadPolicy(file, { env: {} });
    expect(r.policy).toBeUndefined();
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]!.summary).toBe(`cannot read policy file "${file}": no such file`);
  });

  it('an empty file says what is missing', async () => {
    const r = await loadPolicyFromText('', 'empty.yaml', { env: {} });
    expect(renderDiagnostics(r.diagnostics, 'text')).toBe('empty.yaml:1:1: the policy must be a mapping with at least `version: 1` and `targets:`');
  });
});

describe('good policies: defaults and normalization', () => {
  it('fills defaults: implicit local storage, first storage, UTC, hooks, history', async () => {
    const dir = tempDir();
    const p = await mustLoad(`version: 1
schedules:
  nightly: { cron: "0 2 * * *", retention: { keep_daily: 7 } }
targets:
  app: { engine: files, paths: [./data], schedule: nightly }
  db:
    engine: postgres
    connection: postgres://localhost/db
    schedule: { cron: "0 3 * * *", timezone: Europe/Paris, retention: { keep_last: 3 } }
    hooks: { before: [pg_isready], timeout: 1h30m }
`, path.join(dir, 'bkp.yaml'));
    expect(p.storages).toEqual({ local: { name: 'local', type: 'local', path: path.join(dir, 'backups') } });
    expect(p.history).toEqual({ successful: 30, failed: 10 });
    expect(p.schedules.nightly).toEqual({ name: 'nightly', cron: '0 2 * * *', timezone: 'UTC', retention: { keep_daily: 7 } });
    const { app, db } = p.targets;
    expect(app!.storage).toEqual(['local']);
    expect(app!.schedule).toEqual(p.schedules.nightly);
    expect(app!.hooks).toEqual({ before: [], after: [], timeoutMs: 600_000 });
    expect(app!.settings).toEqual({ paths: ['./data'] });
    expect(app!.baseDir).toBe(dir);
    expect(app!.location).toEqual({ file: path.join(dir, 'bkp.yaml'), line: 5, col: 3 });
    expect(db!.schedule).toEqual({ name: undefined, cron: '0 3 * * *', timezone: 'Europe/Paris', retention: { keep_last: 3 } });
    expect(db!.hooks).toEqual({ before: ['pg_isready'], after: [], timeoutMs: 90 * 60_000 });
    expect(db!.settings).toEqual({ connection: 'postgres://localhost/db' });
  });

  it('storage: a name becomes a list, the first declared is the default, local paths resolve against the file', async () => {
    const dir = tempDir();
    const p = await mustLoad(`version: 1
history: { successful: 5 }
storage:
  nas: { type: local, path: ../nas, compression: zstd, retention: { keep_daily: 30 } }
  offsite:
    type: sftp
    host: backup.example.org
    path: /srv/bkp
    private_key_file: keys/id_ed25519
targets:
  a: { engine: files, paths: [x], schedule: { cron: "@daily", retention: { keep_last: 1 } } }
  b: { engine: files, paths: [x], storage: offsite, schedule: { cron: "@daily", retention: { keep_last: 1 } } }
  c: { engine: files, paths: [x], storage: [offsite, nas], schedule: { cron: "@daily", retention: { keep_last: 1 } } }
`, path.join(dir, 'conf', 'bkp.yaml'));
    expect(p.history).toEqual({ successful: 5, failed: 10 });
    expect(p.storages.nas).toMatchObject({ type: 'local', path: path.join(dir, 'nas'), compression: 'zstd', retention: { keep_daily: 30 } });
    expect(p.storages.offsite).toMatchObject({
      type: 'sftp',
      options: { host: 'backup.example.org', path: '/srv/bkp', private_key_file: path.join(dir, 'conf', 'keys', 'id_ed25519') },
    });
    expect([p.targets.a!.storage, p.targets.b!.storage, p.targets.c!.storage]).toEqual([['nas'], ['offsite'], ['offsite', 'nas']]);
  });

  it('the digest is the sha256 of the file bytes', async () => {
    const file = path.join(tempDir(), 'bkp.yaml');
    const text = 'version: 1\ntargets:\n  a: { engine: files, paths: [x], schedule: { cron: "@daily", retention: { keep_last: 1 } } }\n';
    writeFileSync(file, text);
    const r = await loadPolicy(file, { env: {} });
    expect(r.policy!.digest).toBe(createHash('sha256').update(text).digest('hex'));
    expect(r.policy!.file).toBe(file);
  });
});

describe('interpolation', () => {
  const file = (dir: string): string => path.join(dir, 'bkp.yaml');

  it('registers interpolated values as secrets and keeps the written form for display', async () => {
    const p = await mustLoad(`version: 1
targets:
  store:
    engine: postgres
    connection: "postgres://bkp:\${env:PG_PASSWORD}@db.example.org/store"
    schedule: { cron: "0 23 * * *", retention: { keep_daily: 6 } }
  search:
    engine: elasticsearch
    node: \${env:ES_URL}
    auth: { api_key: "\${env:ES_KEY}" }
    snapshot_repository: { name: bkp }
    schedule: { cron: "0 23 * * *", retention: { keep_daily: 6 } }
`, file(tempDir()), { PG_PASSWORD: 'pg-s3cret', ES_URL: 'http://es.internal:9200', ES_KEY: 'es-api-key-123' });
    const store = p.targets.store!;
    expect(store.settings.connection).toBe('postgres://bkp:pg-s3cret@db.example.org/store');
    expect(store.displaySettings.connection).toBe('postgres://bkp:${env:PG_PASSWORD}@db.example.org/store');
    const search = p.targets.search!;
    expect(search.settings.auth).toEqual({ api_key: 'es-api-key-123' });
    const shown = JSON.stringify([store.displaySettings, search.displaySettings]);
    for (const secret of ['pg-s3cret', 'es-api-key-123']) {
      expect(shown).not.toContain(secret);
      expect(redact(`value: ${secret}`)).toBe('value: ***');
    }
    expect(shown).not.toContain('http://es.internal:9200');
  });

  it('a server URL from the environment shows its host, never its user and password', async () => {
    await mustLoad(`version: 1
targets:
  iot:
    engine: couchdb
    url: \${env:CLOUDANT_URL}
    replicate_to: \${env:CLOUDANT_REPLICA_URL}
    databases: [devices]
    schedule: { cron: "0 3 * * 0", retention: { keep_weekly: 4 } }
  hook:
    engine: files
    paths: [x]
    hooks: { after: ["curl \${env:WEBHOOK_URL}"] }
    schedule: { cron: "0 3 * * 0", retention: { keep_weekly: 4 } }
`, file(tempDir()), { CLOUDANT_URL: 'https://admin:pa%24%24word@acct.cloudant.com', CLOUDANT_REPLICA_URL: 'https://apikey-v2-abcdef@replica.example.org/', WEBHOOK_URL: 'https://hooks.example.org/services/T0/B0/tok3n' });
    expect(redact('https://acct.cloudant.com/devices')).toBe('https://acct.cloudant.com/devices');
    expect(redact('error from https://admin:pa%24%24word@acct.cloudant.com: pa$$word')).toBe('error from https://admin:***@acct.cloudant.com: ***');
    expect(redact('user apikey-v2-abcdef')).toBe('user ***');
    expect(redact('https://hooks.example.org/services/T0/B0/tok3n')).toBe('***');
  });

  it('variables named for a place (…_DIR, …_VOLUMES, …_HOST) are shown; credentials never are', async () => {
    await mustLoad(`version: 1
storage:
  safe: { type: local, path: "\${env:BACKUP_DIR}" }
targets:
  app:
    engine: files
    paths: ["\${env:APP_VOLUMES}/*", "\${env:TOKEN_PATH}"]
    hooks: { before: ["curl -H 'X-Key: \${env:API_KEY}' \${env:STATUS_URL}"] }
    schedule: { cron: "0 23 * * *", retention: { keep_daily: 6 } }
`, file(tempDir()), { BACKUP_DIR: '/srv/backups', APP_VOLUMES: '/srv/app/volumes', TOKEN_PATH: '/run/tokens/app', API_KEY: 'k-123456', STATUS_URL: 'https://status.example.org/ping' });
    expect(redact('/srv/backups /srv/app/volumes/x')).toBe('/srv/backups /srv/app/volumes/x');
    expect(redact('/run/tokens/app k-123456 https://status.example.org/ping')).toBe('*** *** ***');
  });

  it('${file:PATH} reads relative to the policy folder, trailing newline trimmed', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'secrets'));
    writeFileSync(path.join(dir, 'secrets', 'backup.key'), 'k3y-from-file\n');
    const p = await mustLoad(`version: 1
storage:
  local:
    type: local
    path: ./backups
    encryption: { key: "\${file:secrets/backup.key}" }
targets:
  a: { engine: files, paths: [x], schedule: { cron: "@daily", retention: { keep_last: 1 } } }
`, file(dir));
    expect(p.storages.local!.encryption).toEqual({ key: 'k3y-from-file' });
    expect(redact('k3y-from-file')).toBe('***');
  });

  it('$${ is a literal ${, and a shell ${VAR} in a hook passes through', async () => {
    const p = await mustLoad(`version: 1
targets:
  a:
    engine: files
    paths: ["$\${env:NOT_ME}"]
    schedule: { cron: "@daily", retention: { keep_last: 1 } }
    hooks: { before: ["tar -C \${HOME} -cf /tmp/x.tar ."] }
`, file(tempDir()));
    expect(p.targets.a!.settings.paths).toEqual(['${env:NOT_ME}']);
    expect(p.targets.a!.hooks.before).toEqual(['tar -C ${HOME} -cf /tmp/x.tar .']);
  });

  it('a missing variable points at its own ${…} inside the value', async () => {
    const r = await loadPolicyFromText(`version: 1
targets:
  a:
    engine: postgres
    connection: "postgres://\${env:PG_USER}:\${env:PG_PW}@h/db"
    schedule: { cron: "@daily", retention: { keep_last: 1 } }
`, 'p.yaml', { env: { PG_USER: 'bkp' } });
    expect(renderDiagnostics(r.diagnostics, 'text')).toBe('p.yaml:5:44: targets.a.connection: environment variable "PG_PW" is not set');
  });
});

describe('examples', () => {
  const env = { BRAINWAVE_VOLUMES: '/var/lib/brainwave/volumes', BRAINWAVE_BACKUP_DIR: '/mnt/backup/brainwave' };

  it('quickstart loads with no diagnostics and backs up into the repository ./backups', async () => {
    const r = await loadPolicy(path.join(ROOT, 'examples', 'quickstart.yaml'), { env });
    expect(r.diagnostics).toEqual([]);
    expect(r.policy!.storages.local).toMatchObject({ type: 'local', path: path.join(ROOT, 'backups') });
    expect(r.policy!.targets.sample!.schedule).toMatchObject({ cron: '0 2 * * *', timezone: 'UTC', retention: { keep_daily: 7, keep_weekly: 4, keep_on_demand: 2 } });
  });

  it('brainwave-volumes loads with no diagnostics: stop/start hooks around the volumes', async () => {
    const r = await loadPolicy(path.join(ROOT, 'examples', 'brainwave-volumes.yaml'), { env });
    expect(r.diagnostics).toEqual([]);
    const t = r.policy!.targets.brainwave!;
    expect(t.hooks.before).toEqual(['brainwave stop']);
    expect(t.hooks.after).toEqual(['brainwave start']);
    expect(t.settings.paths).toEqual(['/var/lib/brainwave/volumes/*']);
    expect(t.displaySettings.paths).toEqual(['${env:BRAINWAVE_VOLUMES}/*']);
  });
});

describe('renderDiagnostics', () => {
  const ds: Diagnostic[] = [
    { severity: 'error', code: 'x', summary: 'bad 50% of "a,b"', detail: 'line two\r\nthree', location: { file: 'dir/a:b.yaml', line: 3, col: 7 } },
    { severity: 'warning', code: 'y', summary: 'connect to postgres://u:hunter22@h/db failed', location: { file: 'a.yaml', line: 9, col: 1 } },
    { severity: 'error', code: 'z', summary: 'no position' },
  ];

  it('text: FILE:LINE:COL: message, warnings marked, secrets redacted', () => {
    expect(renderDiagnostics(ds, 'text')).toBe([
      'dir/a:b.yaml:3:7: bad 50% of "a,b"\n  line two\r\nthree',
      'a.yaml:9:1: warning: connect to postgres://u:***@h/db failed',
      'no position',
    ].join('\n'));
  });

  it('json: one document with counts', () => {
    const doc = JSON.parse(renderDiagnostics(ds, 'json')) as { valid: boolean; errors: number; warnings: number; diagnostics: Diagnostic[] };
    expect(doc).toMatchObject({ valid: false, errors: 2, warnings: 1 });
    expect(doc.diagnostics[1]!.summary).toBe('connect to postgres://u:***@h/db failed');
    expect(JSON.parse(renderDiagnostics([], 'json'))).toEqual({ valid: true, errors: 0, warnings: 0, diagnostics: [] });
  });

  it('github: workflow commands with GitHub escaping', () => {
    expect(renderDiagnostics(ds, 'github').split('\n')).toEqual([
      '::error file=dir/a%3Ab.yaml,line=3,col=7,title=bkp validate::bad 50%25 of "a,b"%0Aline two%0D%0Athree',
      '::warning file=a.yaml,line=9,col=1,title=bkp validate::connect to postgres://u:***@h/db failed',
      '::error title=bkp validate::no position',
    ]);
  });
});

describe('the schema', () => {
  const schema = policySchema();

  it('is draft 2020-12 with an $id, for editors', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(typeof schema.$id).toBe('string');
  });

  it('lists exactly the engines of the EngineName type', () => {
    // A Record over the union: adding an engine to types.ts without adding it here fails to compile.
    const engines: Record<EngineName, true> = { files: true, postgres: true, couchdb: true, mongodb: true, elasticsearch: true, etcd: true, influxdb: true };
    const defs = schema.$defs as Record<string, { properties: { engine: { enum: string[] } } }>;
    expect([...defs.target!.properties.engine.enum].sort()).toEqual(Object.keys(engines).sort());
  });

  it('describes every property, so editors show help', () => {
    const missing: string[] = [];
    const defs = schema.$defs as Record<string, unknown>;
    const walk = (node: unknown, at: string): void => {
      if (!isRecord(node)) return;
      if (isRecord(node.properties)) {
        for (const [k, sub] of Object.entries(node.properties)) {
          const ref = isRecord(sub) && typeof sub.$ref === 'string' ? defs[sub.$ref.split('/').pop()!] : undefined;
          const described = isRecord(sub) && (typeof sub.description === 'string' || (isRecord(ref) && typeof ref.description === 'string'));
          if (!described) missing.push(`${at}.${k}`);
        }
      }
      for (const [k, v] of Object.entries(node)) if (isRecord(v) || Array.isArray(v)) walk(v, `${at}.${k}`);
    };
    walk(schema, '#');
    expect(missing).toEqual([]);
  });
});
