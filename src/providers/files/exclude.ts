import { globToRegExp } from './glob.js';

interface ExcludeRule {
  re: RegExp;
  /** Has a `/`: matched against the whole path relative to the root; otherwise against the name alone, at any depth. */
  anchored: boolean;
  /** Written with a trailing `/`: matches folders only. */
  dirOnly: boolean;
}

function compile(pattern: string): ExcludeRule {
  let p = pattern.replace(/^\.\//, '');
  const dirOnly = p.endsWith('/');
  p = p.replace(/\/+$/, '');
  const anchored = p.includes('/');
  p = p.replace(/^\/+/, '');
  return { re: globToRegExp(p), anchored, dirOnly };
}

/**
 * The filter handed to tar: true keeps a member. `exclude` patterns apply relative to each root,
 * like tar's `--exclude` and `.gitignore`: `*.log` drops log files at any depth, `cache/` drops
 * folders named cache, `data/tmp/**` drops what is under `<root>/data/tmp`. A folder that is
 * dropped is not descended into, so its contents go too.
 *
 * @param roots member names of the roots (`srv/app`, see memberName)
 */
export function excludeFilter(roots: string[], patterns: string[]): (member: string, isDir: boolean) => boolean {
  if (patterns.length === 0) return () => true;
  const rules = patterns.map(compile);
  return (member, isDir) => {
    const name = member.replace(/\/+$/, '');
    const root = roots.find((r) => name === r || name.startsWith(r === '.' ? './' : `${r}/`));
    if (root === undefined) return true;
    const rel = name === root ? '' : name.slice(root.length + 1);
    const base = (rel === '' ? root : rel).split('/').pop() ?? '';
    const excluded = rules.some((r) => (!r.dirOnly || isDir) && (r.anchored ? rel !== '' && r.re.test(rel) : r.re.test(base)));
    return !excluded;
  };
}
