// The big-catalog fixture: N `engine: files` targets, each with its own tiny data folder, one shared
// local storage holding D nightly backups per target, written directly as files in the layout of
// src/storage/catalog-keys.ts:
//   <storage>/<target>/files/<YYYYMMDDTHHMMSSZ>-<12 hex id>.tar.gz
//   <storage>/<target>/files/<same>.manifest.json
// The artifacts are real (tiny) tar.gz files (an empty tar archive, gzipped) and each manifest is a
// valid `Manifest` (src/planner/types.ts) whose size and sha256 match its artifact.
//
// The catalog and data folders can be cached in os.tmpdir()/bkp-bench-cache/<key>, where the key
// hashes every parameter that shapes them (and the generator version), so reruns skip generation.
// A folder is only reused when its `.complete` marker exists: an interrupted generation is redone.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** Bump when the generated layout or contents change, so stale caches are not reused. */
const GENERATOR_VERSION = 2;
const UNIT = 'files';
const DAY_MS = 86_400_000;

export function targetName(i) {
  return `t${String(i).padStart(4, '0')}`;
}

/** `2026-11-21T23:00:07.000Z` → `20261121T230007Z`, as catalog-keys.ts toStamp() does. */
function toStamp(date) {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function hex12(seed) {
  return createHash('sha256').update(seed).digest('hex').slice(0, 12);
}

export function cacheRoot() {
  return path.join(os.tmpdir(), 'bkp-bench-cache');
}

/**
 * params: { targets, days, lastBackupDay: 'YYYY-MM-DD', hourUtc }
 * Returns { dir, catalogDir, dataDir, reused, generation: { ms, files, bytes, generated_at } }.
 */
export function ensureCatalog(params, { cache = true, tempDir, log = () => {} } = {}) {
  const key = createHash('sha256')
    .update(JSON.stringify({ v: GENERATOR_VERSION, ...params }))
    .digest('hex')
    .slice(0, 16);
  const dir = cache ? path.join(cacheRoot(), `catalog-${params.targets}x${params.days}-${key}`) : path.join(tempDir, 'fixture');
  const marker = path.join(dir, '.complete');
  const catalogDir = path.join(dir, 'catalog');
  const dataDir = path.join(dir, 'data');

  if (cache && existsSync(marker)) {
    const info = JSON.parse(readFileSync(marker, 'utf8'));
    return { dir, catalogDir, dataDir, reused: true, generation: info.generation };
  }
  if (existsSync(dir)) {
    log(`removing an incomplete fixture at ${dir}`);
    rmSync(dir, { recursive: true, force: true });
  }

  const t0 = process.hrtime.bigint();
  const artifact = gzipSync(Buffer.alloc(1024)); // an empty tar archive (two zero blocks), gzipped
  const artifactSha = createHash('sha256').update(artifact).digest('hex');
  const last = Date.parse(`${params.lastBackupDay}T00:00:00Z`) + params.hourUtc * 3_600_000;
  let files = 0;
  let bytes = 0;

  for (let t = 0; t < params.targets; t++) {
    const name = targetName(t);
    // The target's data: one small file in its own folder.
    const data = path.join(dataDir, name);
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(data, 'hello.txt'), `data of ${name}\n`);

    const unitDir = path.join(catalogDir, name, UNIT);
    mkdirSync(unitDir, { recursive: true });
    for (let d = params.days - 1; d >= 0; d--) {
      const seed = `${name}/${d}`;
      const id = hex12(seed);
      // Started a few seconds after the cron fired, as a real run would; took a few seconds.
      const jitterS = parseInt(id.slice(0, 2), 16) % 30;
      const started = new Date(last - d * DAY_MS + jitterS * 1000);
      const finished = new Date(started.getTime() + 1000 + (parseInt(id.slice(2, 4), 16) % 5) * 1000);
      const base = `${toStamp(started)}-${id}`;
      const artifactName = `${base}.tar.gz`;
      const manifest = {
        format: 'bkp-manifest/1',
        id,
        target: name,
        unit: UNIT,
        engine: 'files',
        kind: 'scheduled',
        started_at: started.toISOString(),
        finished_at: finished.toISOString(),
        size: artifact.length,
        sha256: artifactSha,
        compression: 'gzip',
        encryption: 'none',
        artifact: artifactName,
        facts: { paths: [data], file_count: 0 },
      };
      const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
      writeFileSync(path.join(unitDir, artifactName), artifact);
      writeFileSync(path.join(unitDir, `${base}.manifest.json`), manifestText);
      files += 2;
      bytes += artifact.length + Buffer.byteLength(manifestText);
    }
    if ((t + 1) % 100 === 0) log(`  generated ${t + 1}/${params.targets} targets`);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const generation = { ms, files, bytes, generated_at: new Date().toISOString() };
  writeFileSync(marker, `${JSON.stringify({ params, generator_version: GENERATOR_VERSION, generation }, null, 2)}\n`);
  return { dir, catalogDir, dataDir, reused: false, generation };
}

/** The policy file (YAML text) for the fixture; written into the run's temp folder. */
export function policyYaml(params, fixture, retention = '{ keep_daily: 7, keep_weekly: 4, keep_monthly: 12 }') {
  const lines = [
    '# generated by bench/run.mjs: the big-catalog plan benchmark',
    'version: 1',
    'storage:',
    '  local:',
    '    type: local',
    `    path: ${JSON.stringify(fixture.catalogDir)}`,
    'schedules:',
    '  nightly:',
    `    cron: "0 ${params.hourUtc} * * *"`,
    '    timezone: UTC',
    `    retention: ${retention}`,
    'targets:',
  ];
  for (let t = 0; t < params.targets; t++) {
    const name = targetName(t);
    lines.push(
      `  ${name}:`,
      '    engine: files',
      `    paths: [${JSON.stringify(path.join(fixture.dataDir, name))}]`,
      '    storage: local',
      '    schedule: nightly',
    );
  }
  return `${lines.join('\n')}\n`;
}
