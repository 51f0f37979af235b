/**
 * Secrets never appear in output (DESIGN §1). Every value that interpolation pulled from the
 * environment or a file is registered here, and every line bkp prints passes through `redact`.
 * Passwords inside URLs are masked whether or not they were registered.
 */
const secrets = new Set<string>();

/** Registers a value that must never be printed. Short values are ignored: masking "1" everywhere would garble output. */
export function registerSecret(value: string): void {
  if (value.length >= 4) secrets.add(value);
}

export function clearSecrets(): void {
  secrets.clear();
}

const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]+:)([^@/\s]+)(@)/gi;

export function redact(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join('***');
  }
  // The regex walks the whole text; a plan of 300,000 actions is 100+ MB, so only when a URL is in it.
  return out.includes('://') ? out.replace(URL_PASSWORD, '$1***$3') : out;
}
