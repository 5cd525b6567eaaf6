// Writing paths to a terminal or a pipe: raw bytes, never re-encoded.

/** Writes bytes and strings to stdout unchanged (a file name may not be UTF-8). */
export function writeOut(...parts: (string | Buffer)[]): void {
  process.stdout.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
}
