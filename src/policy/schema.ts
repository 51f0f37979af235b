import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv2020, ErrorObject, Options, ValidateFunction } from 'ajv/dist/2020.js';

/** A JSON Schema node, as read from `schemas/policy.schema.json`. */
export type SchemaNode = { [keyword: string]: unknown };

// Read from the file (not a JSON import): the same path works from src/ (tests) and dist/ (the package ships schemas/).
const SCHEMA_URL = new URL('../../schemas/policy.schema.json', import.meta.url);

/** Name of the validator `scripts/compile-schema.mjs` generates next to this module's compiled copy in dist/policy/. */
export const PRECOMPILED_VALIDATOR = 'policy-validator.cjs';
const PRECOMPILED_URL = new URL(`./${PRECOMPILED_VALIDATOR}`, import.meta.url);

const require = createRequire(import.meta.url);

/**
 * The ajv instance the policy schema is compiled with: at runtime (from src/, under vitest) and at
 * build time (`scripts/compile-schema.mjs` passes `{ code: { source: true } }`), so both validators
 * are made with the same options and give the same error objects. Loads ajv only when called.
 */
export function policyAjv(extra: Options = {}): Ajv2020 {
  const { Ajv2020: Ajv } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  // verbose: errors carry the failing schema node and data, which the translator needs for readable messages.
  // strictTypes off: the per-engine `then` blocks list properties without repeating `type: object`.
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, ...extra });
  // Annotation only: how a value's expected shape is said to a person ("a string or a list of strings").
  ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
  return ajv;
}

/** SHA-256 of the schema file's bytes: the precompiled validator records the one it was generated from. */
export function schemaDigest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

let schemaBytes: Buffer | undefined;
let schemaCache: SchemaNode | undefined;
let validateCache: ValidateFunction | undefined;

function readSchemaBytes(): Buffer {
  schemaBytes ??= readFileSync(SCHEMA_URL);
  return schemaBytes;
}

/**
 * The validator generated at build time when it exists and was made from this very schema file;
 * otherwise (running from src/, or a schema edited since the last build) the schema compiled now.
 */
function validator(): ValidateFunction {
  if (!validateCache) {
    const bytes = readSchemaBytes();
    const file = fileURLToPath(PRECOMPILED_URL);
    if (existsSync(file)) {
      const pre = require(file) as ValidateFunction & { schemaSha256?: string };
      if (pre.schemaSha256 === schemaDigest(bytes)) validateCache = pre;
    }
    validateCache ??= policyAjv().compile(policySchema());
  }
  return validateCache;
}

/** The policy schema, the single source of truth for the file's shape (DESIGN §1). */
export function policySchema(): SchemaNode {
  schemaCache ??= JSON.parse(readSchemaBytes().toString('utf8')) as SchemaNode;
  return schemaCache;
}

/** Raw ajv errors for a parsed policy value; empty when it fits the schema. */
export function validateAgainstSchema(value: unknown): ErrorObject[] {
  const validate = validator();
  return validate(value) ? [] : [...(validate.errors ?? [])];
}
