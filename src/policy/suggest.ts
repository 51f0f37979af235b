import { createRequire } from 'node:module';

// Loaded on the first suggestion, i.e. only for a policy with mistakes: valid policies never pay for it.
let distanceFn: typeof import('fastest-levenshtein').distance | undefined;
function distance(a: string, b: string): number {
  distanceFn ??= (createRequire(import.meta.url)('fastest-levenshtein') as typeof import('fastest-levenshtein')).distance;
  return distanceFn(a, b);
}

/** The candidate closest to `word`, when it is close enough to be a plausible typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  // A third of the word's length: "schedul" → "schedule", but "foo" suggests nothing far-fetched.
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** `; did you mean "x"?`, or an empty string. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `; did you mean "${c}"?`;
}
