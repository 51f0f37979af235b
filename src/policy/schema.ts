import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

/** A JSON Schema node, as read from `schemas/policy.schema.json`. */
export type SchemaNode = { [keyword: string]: unknown };

// Read from the file (not a JSON import): the same path works from src/ (tests) and dist/ (the package ships schemas/).
const SCHEMA_URL = new URL('../../schemas/policy.schema.json', import.meta.url);

let cached: { schema: SchemaNode; validate: ValidateFunction } | undefined;

function compiled(): { schema: SchemaNode; validate: ValidateFunction } {
  if (!cached) {
    const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as SchemaNode;
    // verbose: errors carry the failing schema node and data, which the translator needs for readable messages.
    // strictTypes off: the per-engine `then` blocks list properties without repeating `type: object`.
    const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictTypes: false });
    // Annotation only: how a value's expected shape is said to a person ("a string or a list of strings").
    ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
    cached = { schema, validate: ajv.compile(schema) };
  }
  return cached;
}

/** The policy schema, the single source of truth for the file's shape (DESIGN §1). */
export function policySchema(): SchemaNode {
  return compiled().schema;
}

/** Raw ajv errors for a parsed policy value; empty when it fits the schema. */
export function validateAgainstSchema(value: unknown): ErrorObject[] {
  const { validate } = compiled();
  return validate(value) ? [] : [...(validate.errors ?? [])];
}
