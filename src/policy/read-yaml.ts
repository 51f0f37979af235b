import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node, Pair } from 'yaml';
import type { Diagnostic, SourceLocation } from '../core/diagnostics.js';
import type { FieldPath } from './tree.js';

/** A key written twice in the same mapping (the YAML parser is told to let it through, so we can say where both are). */
export interface DuplicateKey {
  /** Path of the mapping that holds the key. */
  parent: FieldPath;
  key: string;
  firstLine: number;
  location: SourceLocation;
}

/** Positions of fields in the policy text: every diagnostic points at the key or value it is about. */
export interface YamlSource {
  readonly file: string;
  /** The key (`part: 'key'`) or the value of the field at `path`; the nearest existing ancestor when it is absent. */
  locate(path: FieldPath, part: 'key' | 'value'): SourceLocation;
  /** Where `needle` is written inside the scalar at `path` (e.g. one `${env:X}` in a URL), else the scalar's start. */
  locateText(path: FieldPath, needle: string): SourceLocation;
}

export interface ReadYamlResult {
  /** The parsed value (later keys win over duplicates); undefined when the text is not valid YAML. */
  value: unknown;
  source: YamlSource;
  diagnostics: Diagnostic[];
  duplicates: DuplicateKey[];
}

type Range = readonly [number, number, number];

/** Parses the policy text keeping positions; syntax errors and duplicate keys come back with line:col. */
export function readYaml(text: string, file: string): ReadYamlResult {
  const lines = new LineCounter();
  // uniqueKeys off: the parser's own duplicate error names only one of the two places; we report both.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const at = (offset: number): SourceLocation => {
    const { line, col } = lines.linePos(offset);
    return { file, line, col };
  };
  const source = makeSource(doc, text, file, at);
  const diagnostics: Diagnostic[] = doc.warnings.map((w) => ({
    severity: 'warning',
    code: 'yaml.warning',
    summary: w.message,
    location: at(w.pos[0]),
  }));
  if (doc.errors.length > 0) {
    // Only the first syntax error: the parser's recovery makes the following ones mostly echoes of it.
    const err = doc.errors[0]!;
    const location = at(err.pos[0]);
    const lineText = text.split(/\r?\n/)[location.line - 1] ?? '';
    diagnostics.push({
      severity: 'error',
      code: 'yaml.syntax',
      summary: `YAML syntax error: ${err.message}`,
      detail: syntaxHint(lineText),
      location,
    });
    return { value: undefined, source, diagnostics, duplicates: [] };
  }
  const duplicates: DuplicateKey[] = [];
  findDuplicates(doc.contents, [], duplicates, at);
  return { value: doc.toJS({ maxAliasCount: 1000 }) as unknown, source, diagnostics, duplicates };
}

/** `${env:X}` is a plain scalar in block style but breaks inside `{ }` / `[ ]`, where braces are syntax. */
function syntaxHint(lineText: string): string | undefined {
  if (/\$\{/.test(lineText) && /[[{]/.test(lineText.replace(/\$\{[^}]*\}/g, ''))) {
    return 'inside { } or [ ], quote values that contain ${…}: "${env:NAME}"';
  }
  return undefined;
}

function keyText(pair: Pair): string | undefined {
  if (isScalar(pair.key)) return String(pair.key.value);
  return undefined;
}

function findDuplicates(node: unknown, path: FieldPath, out: DuplicateKey[], at: (o: number) => SourceLocation): void {
  if (isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      const key = keyText(pair);
      const range = isScalar(pair.key) ? pair.key.range : undefined;
      if (key !== undefined && range) {
        const first = seen.get(key);
        if (first !== undefined) out.push({ parent: path, key, firstLine: at(first).line, location: at(range[0]) });
        else seen.set(key, range[0]);
      }
      if (key !== undefined) findDuplicates(pair.value, [...path, key], out, at);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => findDuplicates(item, [...path, i], out, at));
  }
}

function makeSource(doc: Document, text: string, file: string, at: (o: number) => SourceLocation): YamlSource {
  const start: SourceLocation = { file, line: 1, col: 1 };
  /** The deepest node along `path`, with the pair that holds it (last pair wins, as in the parsed value). */
  const walk = (path: FieldPath): { node: unknown; pair?: Pair; complete: boolean } => {
    let node: unknown = doc.contents;
    let pair: Pair | undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const found = [...node.items].reverse().find((p) => isPair(p) && keyText(p) === String(seg));
        if (!found) return { node, pair, complete: false };
        pair = found;
        node = found.value;
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        pair = undefined;
        node = node.items[seg];
      } else {
        return { node, pair, complete: false };
      }
    }
    return { node, pair, complete: true };
  };
  const rangeOf = (n: unknown): Range | undefined => (n && typeof n === 'object' && 'range' in n ? ((n as Node).range ?? undefined) : undefined);
  return {
    file,
    locate(path, part) {
      const { node, pair, complete } = walk(path);
      const keyRange = pair ? rangeOf(pair.key) : undefined;
      const valueRange = rangeOf(node);
      const range = part === 'key' || !complete ? (keyRange ?? valueRange) : (valueRange ?? keyRange);
      return range ? at(range[0]) : start;
    },
    locateText(path, needle) {
      const { node, complete } = walk(path);
      const range = rangeOf(node);
      if (!complete || !range) return this.locate(path, 'value');
      const i = text.slice(range[0], range[1]).indexOf(needle);
      return at(range[0] + Math.max(i, 0));
    },
  };
}
