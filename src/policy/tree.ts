/**
 * Helpers for walking the plain value a YAML document parses to. Schema checks, semantic
 * checks and normalization all speak about fields by path, e.g. `targets.app.storage[0]`.
 */

/** Keys and list indexes from the document root to a field. */
export type FieldPath = readonly (string | number)[];

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/** `targets.app.storage[0]`; keys that are not plain words are quoted: `targets["../etc"]`. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (PLAIN_KEY.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** `path: message`, or just the message for the document root. */
export function atPath(path: FieldPath, message: string): string {
  const p = formatPath(path);
  return p ? `${p}: ${message}` : message;
}

/** Converts an ajv instancePath (JSON pointer) into a FieldPath, using the data to tell list indexes from keys. */
export function pointerToPath(pointer: string, data: unknown): FieldPath {
  if (pointer === '') return [];
  const out: (string | number)[] = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const i = Number(seg);
      out.push(i);
      cur = cur[i];
    } else {
      out.push(seg);
      cur = isRecord(cur) ? cur[seg] : undefined;
    }
  }
  return out;
}

export function getAt(data: unknown, path: FieldPath): unknown {
  let cur: unknown = data;
  for (const seg of path) {
    if (typeof seg === 'number') cur = Array.isArray(cur) ? cur[seg] : undefined;
    else cur = isRecord(cur) ? cur[seg] : undefined;
  }
  return cur;
}
