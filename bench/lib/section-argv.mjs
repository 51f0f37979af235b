// How a bench section that runs before bench/run.mjs's own option parsing (etcd, couchdb) takes
// its part of argv: whether `--only` names it, its own options, and the argv left for run.mjs.

/**
 * `kind(name)` says what an option (without `--`) is to the section: `value` (takes the next
 * argument unless written `--name=value`), `flag`, `shared` (a flag both the section and run.mjs
 * read), or undefined (run.mjs's). Returns `{ selected, mine, rest, otherOnly }`: `rest` is argv
 * without the section in `--only` and without the section's own options; `otherOnly` says
 * whether `--only` also names other sections.
 */
export function splitSectionArgv(argv, section, kind) {
  const mine = [];
  const rest = [];
  let selected = false;
  let otherOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const name = flag.replace(/^--/, '');
    if (flag === '--only') {
      const v = inline ?? argv[++i] ?? '';
      const parts = v.split(',').map((x) => x.trim()).filter(Boolean);
      if (parts.includes(section)) selected = true;
      const others = parts.filter((x) => x !== section);
      if (others.length) {
        otherOnly = true;
        rest.push('--only', others.join(','));
      }
      continue;
    }
    const k = kind(name);
    if (k === 'value') {
      mine.push(a);
      if (inline === undefined) mine.push(argv[++i]);
    } else if (k === 'flag') mine.push(a);
    else if (k === 'shared') {
      mine.push(a);
      rest.push(a);
    } else rest.push(a);
  }
  return { selected, mine, rest, otherOnly };
}
