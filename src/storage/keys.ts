/**
 * The key rules every storage kind shares, so a policy behaves alike on each: keys are relative,
 * slash-separated, without `.`/`..`/empty segments, backslashes or NUL — they can never leave
 * the storage's root. `where` names the storage in the error.
 */
export function assertValidKey(key: string, where: string, { prefix = false } = {}): void {
  const bad =
    key === '' ||
    key.startsWith('/') ||
    key.includes('\\') ||
    key.includes('\0') ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..');
  if (bad) {
    throw new Error(`${where}: invalid ${prefix ? 'prefix' : 'key'} "${key}" (keys are relative paths without "." or ".." segments)`);
  }
}
