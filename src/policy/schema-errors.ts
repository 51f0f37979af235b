import type { ErrorObject } from 'ajv/dist/2020.js';
import type { Diagnostic, SourceLocation } from '../core/diagnostics.js';
import type { YamlSource } from './read-yaml.js';
import type { SchemaNode } from './schema.js';
import { closest } from './suggest.js';
import { atPath, formatPath, getAt, isRecord, pointerToPath } from './tree.js';
import type { FieldPath } from './tree.js';

/** An ajv error with its path decoded. */
interface Err {
  e: ErrorObject;
  path: FieldPath;
  pointer: string;
}

/**
 * Translates raw ajv errors into readable diagnostics at the offending key or value
 * (changesets' `parse.ts` style: each message starts with the field's path). When `anyOf` or
 * `if/then` produce several errors for one mistake, the one that matches what the user wrote wins.
 */
export function schemaDiagnostics(errors: readonly ErrorObject[], value: unknown, source: YamlSource, root: SchemaNode): Diagnostic[] {
  const errs: Err[] = errors
    // `if` only says "the then-branch failed": the then-branch's own errors are more precise.
    // Errors inside propertyNames repeat the propertyNames error itself.
    .filter((e) => e.keyword !== 'if' && e.propertyName === undefined)
    .map((e) => ({ e, pointer: e.instancePath, path: pointerToPath(e.instancePath, value) }));
  const { keep, extra } = resolveAnyOf(errs, value, source, root);
  const out: Diagnostic[] = [...extra];
  const hinted = new Set<string>();
  for (const err of keep) {
    const d = translate(err, { value, source, root, hinted });
    if (d) out.push(d);
  }
  return dedupe(out).filter((d) => !impliedByHint(d, hinted));
}

interface Ctx {
  value: unknown;
  source: YamlSource;
  root: SchemaNode;
  /** `path\0key` for each "did you mean key" given: a missing `key` there is the same mistake. */
  hinted: Set<string>;
}

function diag(code: string, path: FieldPath, summary: string, location: SourceLocation, detail?: string): Diagnostic {
  const target = path[0] === 'targets' && typeof path[1] === 'string' ? path[1] : undefined;
  return { severity: 'error', code, summary, location, path: formatPath(path), ...(detail ? { detail } : {}), ...(target ? { target } : {}) };
}

function resolveRef(node: unknown, root: SchemaNode): SchemaNode {
  let cur: unknown = node;
  for (let hops = 0; isRecord(cur) && typeof cur.$ref === 'string' && hops < 10; hops++) {
    let target: unknown = root;
    for (const seg of cur.$ref.replace(/^#\/?/, '').split('/').filter(Boolean)) target = isRecord(target) ? target[seg] : undefined;
    cur = isRecord(target) ? { ...target, ...withoutRef(cur) } : cur;
  }
  return isRecord(cur) ? cur : {};
}

function withoutRef(node: Record<string, unknown>): Record<string, unknown> {
  const { $ref: _ignored, ...rest } = node;
  return rest;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v === 'object' ? 'object' : typeof v;
}

function typeMatches(node: SchemaNode, v: unknown): boolean {
  const types = Array.isArray(node.type) ? node.type : node.type === undefined ? [] : [node.type];
  if (types.length === 0) return node.const === undefined || typeof node.const === jsonType(v);
  const t = jsonType(v);
  return types.some((x) => x === t || (x === 'number' && t === 'integer'));
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', object: 'a mapping', array: 'a list', null: 'empty',
};

/** How a person says what a schema node accepts. */
function describe(node: SchemaNode, root: SchemaNode): string {
  if (typeof node['x-expected'] === 'string') return node['x-expected'];
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (Array.isArray(node.enum)) return `one of ${node.enum.map((x) => JSON.stringify(x)).join(', ')}`;
  if (Array.isArray(node.anyOf)) return node.anyOf.map((b) => describe(resolveRef(b, root), root)).join(' or ');
  if (node.type === 'array' && isRecord(node.items) && typeof node.items.type === 'string') return `a list of ${node.items.type}s`;
  const types = Array.isArray(node.type) ? node.type : [node.type];
  return types.map((t) => TYPE_WORDS[String(t)] ?? String(t)).join(' or ');
}

/**
 * For each failed `anyOf`, keeps the errors of the branch whose type matches the value (an inline
 * schedule with a bad key reports that key) or, when none matches, one "must be …" message.
 */
function resolveAnyOf(errs: Err[], value: unknown, source: YamlSource, root: SchemaNode): { keep: Err[]; extra: Diagnostic[] } {
  const drop = new Set<Err>();
  const extra: Diagnostic[] = [];
  for (const a of errs.filter((x) => x.e.keyword === 'anyOf')) {
    drop.add(a);
    const parent = (a.e.parentSchema ?? {}) as SchemaNode;
    const branches = (Array.isArray(parent.anyOf) ? parent.anyOf : []).map((b) => ({ raw: b, node: resolveRef(b, root) }));
    const data = getAt(value, a.path);
    const matching = branches.findIndex((b) => typeMatches(b.node, data));
    const here = errs.filter((x) => x !== a && x.pointer === a.pointer);
    const branchOf = (x: Err): number | undefined => {
      const m = x.e.schemaPath.startsWith(`${a.e.schemaPath}/`) ? /^\/(\d+)\//.exec(x.e.schemaPath.slice(a.e.schemaPath.length)) : null;
      if (m) return Number(m[1]);
      // Errors of a `$ref` branch carry the referenced definition's path: they belong to the $ref branch.
      const refs = branches.map((b, i) => (isRecord(b.raw) && '$ref' in b.raw ? i : -1)).filter((i) => i >= 0);
      return refs.length === 1 ? refs[0] : undefined;
    };
    const mustBe = (): Diagnostic => diag('schema.type', a.path, atPath(a.path, `must be ${describe(parent, root)}`), source.locate(a.path, 'value'));
    if (matching < 0) {
      for (const x of here) drop.add(x);
      extra.push(mustBe());
      continue;
    }
    let replaced = false;
    for (const x of here) {
      const b = branchOf(x);
      if (b !== matching) drop.add(x);
      else if (['type', 'const', 'enum'].includes(x.e.keyword)) {
        drop.add(x);
        replaced = true;
      }
    }
    if (replaced) extra.push(mustBe());
  }
  return { keep: errs.filter((x) => !drop.has(x)), extra };
}

function translate(err: Err, ctx: Ctx): Diagnostic | undefined {
  const { e, path } = err;
  const { value, source, root } = ctx;
  const parent = (e.parentSchema ?? {}) as SchemaNode;
  const valueAt = source.locate(path, 'value');
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'unevaluatedProperties':
    case 'additionalProperties': {
      const key = String(params.unevaluatedProperty ?? params.additionalProperty);
      const obj = getAt(value, path);
      const allowed = allowedKeys(parent, isRecord(obj) ? obj : {}, root);
      // Unknown only when we can tell: with a bad or missing `engine`/`type`, that error says it all;
      // a known key left "unevaluated" by a failed then-branch has its own error.
      if (!allowed || allowed.includes(key)) return undefined;
      const present = isRecord(obj) ? Object.keys(obj) : [];
      const hint = closest(key, allowed.filter((k) => !present.includes(k)));
      const where = path.length ? ` in ${formatPath(path)}` : '';
      if (hint) ctx.hinted.add(`${formatPath(path)}\u0000${hint}`);
      return diag('schema.unknown_key', [...path, key], `unknown key "${key}"${where}${hint ? `; did you mean "${hint}"?` : ''}`,
        source.locate([...path, key], 'key'), hint ? undefined : `valid keys: ${allowed.join(', ')}`);
    }
    case 'required':
      return diag('schema.missing_field', path, atPath(path, `missing required field "${String(params.missingProperty)}"`), source.locate(path, 'key'));
    case 'propertyNames': {
      const name = String(params.propertyName);
      const kind = { targets: 'target', storage: 'storage', schedules: 'schedule' }[String(path[path.length - 1])] ?? 'key';
      return diag('schema.bad_name', [...path, name],
        `invalid ${kind} name ${JSON.stringify(name)}: use lowercase letters, digits, "-" and "_", starting with a letter or digit (names become folder names)`,
        source.locate([...path, name], 'key'));
    }
    case 'type':
      if (path.length === 0) return diag('schema.type', path, 'the policy must be a mapping with at least `version: 1` and `targets:`', valueAt);
      return diag('schema.type', path, atPath(path, `must be ${describe(parent, root)}`), valueAt);
    case 'enum': {
      const data = getAt(value, path);
      const allowed = (Array.isArray(parent.enum) ? parent.enum : []).map(String);
      const hint = typeof data === 'string' ? closest(data, allowed) : undefined;
      return diag('schema.invalid_value', path, atPath(path, `must be ${describe(parent, root)}${hint ? `; did you mean "${hint}"?` : ''}`), valueAt);
    }
    case 'const':
    case 'pattern':
      return diag('schema.invalid_value', path, atPath(path, `must be ${describe(parent, root)}`), valueAt);
    case 'minLength':
      return diag('schema.invalid_value', path, atPath(path, typeof parent['x-expected'] === 'string' ? `must be ${parent['x-expected']}` : 'must not be empty'), valueAt);
    case 'minProperties':
      return diag('schema.invalid_value', path, atPath(path, 'must not be empty'), valueAt);
    case 'minItems':
      return diag('schema.invalid_value', path, atPath(path, params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} items`), valueAt);
    case 'uniqueItems': {
      const list = getAt(value, path);
      const dup = Array.isArray(list) ? list[Number(params.i)] : undefined;
      return diag('schema.invalid_value', path, atPath(path, `lists ${JSON.stringify(dup)} twice`), valueAt);
    }
    case 'minimum':
      return diag('schema.invalid_value', path, atPath(path, `must be at least ${String(params.limit)}`), valueAt);
    case 'maximum':
      return diag('schema.invalid_value', path, atPath(path, `must be at most ${String(params.limit)}`), valueAt);
    default:
      return diag('schema.invalid_value', path, atPath(path, e.message ?? 'is invalid'), valueAt);
  }
}

/**
 * Keys a schema node accepts for this object: its properties plus those of every `then` whose
 * `if` holds. Undefined when it has if/then branches and none holds (the discriminator is wrong).
 */
function allowedKeys(node: SchemaNode, obj: Record<string, unknown>, root: SchemaNode): string[] | undefined {
  const keys = new Set(Object.keys(isRecord(node.properties) ? node.properties : {}));
  const conditional = (Array.isArray(node.allOf) ? node.allOf : []).filter(isRecord).filter((b) => isRecord(b.if));
  if (conditional.length === 0) return [...keys];
  const hit = conditional.find((b) => conditionHolds(b.if as SchemaNode, obj));
  if (!hit) return undefined;
  const then = resolveRef(hit.then, root);
  for (const k of Object.keys(isRecord(then.properties) ? then.properties : {})) keys.add(k);
  return [...keys];
}

/** The `if` blocks are `{ properties: { engine: { const: X } }, required: [engine] }`: equality on a few keys. */
function conditionHolds(cond: SchemaNode, obj: Record<string, unknown>): boolean {
  const props = isRecord(cond.properties) ? cond.properties : {};
  return Object.entries(props).every(([k, sub]) => !isRecord(sub) || sub.const === undefined || obj[k] === sub.const);
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.path}\u0000${d.summary}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** `schedul:` written instead of `schedule:` is one mistake: the "did you mean" says it, a missing-field error would only echo it. */
function impliedByHint(d: Diagnostic, hinted: Set<string>): boolean {
  const field = d.code === 'schema.missing_field' ? /missing required field "([^"]+)"$/.exec(d.summary)?.[1] : undefined;
  return field !== undefined && hinted.has(`${d.path ?? ''}\u0000${field}`);
}
