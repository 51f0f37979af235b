/**
 * Shell-style globs to regular expressions, for `exclude` (tar matches each member as it walks,
 * so the matcher must be a pure function of a path). Supports `*`, `?`, `[abc]`/`[!abc]`,
 * `{a,b}` and `**` as a whole segment. `*` matches names starting with a dot, as in tar.
 * Written here rather than importing picomatch, which ships no type declarations.
 */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${translate(glob)}$`);
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/** Index of the `]` closing a class opened at `start`, or -1 (then `[` is literal). */
function classEnd(glob: string, start: number): number {
  let i = start + 1;
  if (glob[i] === '!' || glob[i] === '^') i++;
  if (glob[i] === ']') i++; // a leading `]` is a member of the class
  for (; i < glob.length; i++) {
    if (glob[i] === '\\') i++;
    else if (glob[i] === ']') return i;
  }
  return -1;
}

/** Top-level alternatives of a `{…}` opened at `start` and where it ends, or undefined when it is not a brace set. */
function braceSet(glob: string, start: number): { alternatives: string[]; end: number } | undefined {
  let depth = 0;
  let from = start + 1;
  const alternatives: string[] = [];
  for (let i = start; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') i++;
    else if (c === '[') {
      const end = classEnd(glob, i);
      if (end > 0) i = end;
    } else if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) {
        alternatives.push(glob.slice(from, i));
        return alternatives.length > 1 ? { alternatives, end: i } : undefined;
      }
    } else if (c === ',' && depth === 1) {
      alternatives.push(glob.slice(from, i));
      from = i + 1;
    }
  }
  return undefined;
}

function translate(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; ) {
    const c = glob.charAt(i);
    if (c === '\\' && i + 1 < glob.length) {
      out += escapeChar(glob.charAt(i + 1));
      i += 2;
    } else if (c === '*') {
      let j = i;
      while (glob[j] === '*') j++;
      const wholeSegment = j - i >= 2 && (i === 0 || glob[i - 1] === '/') && (j === glob.length || glob[j] === '/');
      if (wholeSegment && j === glob.length) {
        out += '.*'; // `dir/**`: everything below
        i = j;
      } else if (wholeSegment) {
        out += '(?:[^/]*/)*'; // `**/`: zero or more folders
        i = j + 1;
      } else {
        out += '[^/]*';
        i = j;
      }
    } else if (c === '?') {
      out += '[^/]';
      i++;
    } else if (c === '[') {
      const end = classEnd(glob, i);
      if (end < 0) {
        out += '\\[';
        i++;
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      body = body.replace(/\\(.)/g, '$1').replace(/[\\\]^]/g, '\\$&');
      out += negate ? `[^/${body}]` : `[${body}]`;
      i = end + 1;
    } else if (c === '{') {
      const set = braceSet(glob, i);
      if (set) {
        out += `(?:${set.alternatives.map(translate).join('|')})`;
        i = set.end + 1;
      } else {
        out += '\\{';
        i++;
      }
    } else {
      out += escapeChar(c);
      i++;
    }
  }
  return out;
}
