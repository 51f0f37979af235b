import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic } from '../core/diagnostics.js';
import { hasErrors } from '../core/diagnostics.js';
import { interpolate } from './interpolate.js';
import { normalizePolicy } from './normalize.js';
import { readYaml } from './read-yaml.js';
import { policySchema, validateAgainstSchema } from './schema.js';
import { duplicateDiagnostics, semanticDiagnostics } from './semantic.js';
import { isRecord } from './tree.js';
import type { Policy } from './types.js';

export interface LoadOptions {
  /** Where `${env:…}` looks: pass `process.env`, or a fixed map in tests. */
  env: Record<string, string | undefined>;
}

/** A policy when it has no errors (warnings allowed), and every problem found, all at once. */
export interface LoadResult {
  policy?: Policy;
  diagnostics: Diagnostic[];
}

/** Reads, interpolates, validates and normalizes a policy file. Never throws for a bad policy. */
export async function loadPolicy(file: string, opts: LoadOptions): Promise<LoadResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    return { diagnostics: [{ severity: 'error', code: 'policy.unreadable', summary: `cannot read policy file "${file}": ${why}` }] };
  }
  return loadFrom(bytes.toString('utf8'), sha256(bytes), file, opts);
}

/** Same as `loadPolicy` for text already in memory; `file` names it in diagnostics and anchors relative paths. */
export async function loadPolicyFromText(text: string, file: string, opts: LoadOptions): Promise<LoadResult> {
  return loadFrom(text, sha256(Buffer.from(text, 'utf8')), file, opts);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function loadFrom(text: string, digest: string, file: string, opts: LoadOptions): Promise<LoadResult> {
  const baseDir = path.dirname(path.resolve(file));
  const read = readYaml(text, file);
  if (read.value === undefined) return { diagnostics: sorted(read.diagnostics) };
  const interpolated = interpolate(read.value, { env: opts.env, baseDir, source: read.source });
  // A failed reference stays as written; schema and semantic complaints about that same field would only echo it.
  const quiet = (ds: Diagnostic[]): Diagnostic[] => ds.filter((d) => d.path === undefined || !interpolated.failed.has(d.path));
  const schemaErrors = validateAgainstSchema(interpolated.value);
  // The translator (and the schema it reads) is loaded only when there is something to translate.
  const schemaDiags = schemaErrors.length === 0 ? []
    : (await import('./schema-errors.js')).schemaDiagnostics(schemaErrors, interpolated.value, read.source, policySchema());
  const diagnostics = [
    ...read.diagnostics,
    ...duplicateDiagnostics(read.duplicates),
    ...interpolated.diagnostics,
    ...quiet(schemaDiags),
    ...quiet(semanticDiagnostics(interpolated.value, read.source)),
  ];
  if (hasErrors(diagnostics) || !isRecord(interpolated.value) || !isRecord(read.value)) return { diagnostics: sorted(diagnostics) };
  const policy = normalizePolicy(interpolated.value, read.value, { file, baseDir, digest, source: read.source });
  return { policy, diagnostics: sorted(diagnostics) };
}

/** In file order, so the output reads top to bottom; diagnostics without a position last. */
function sorted(ds: Diagnostic[]): Diagnostic[] {
  const key = (d: Diagnostic): number => (d.location ? d.location.line * 1e6 + d.location.col : Number.MAX_SAFE_INTEGER);
  return ds.map((d, i) => ({ d, i })).sort((a, b) => key(a.d) - key(b.d) || a.i - b.i).map(({ d }) => d);
}
