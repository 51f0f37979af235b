/** Writes a block of text to stdout with exactly one trailing newline. */
export function write(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
