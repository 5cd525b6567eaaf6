// Errors as plain data: what crosses a worker boundary and what the CLI prints.

export interface ErrorRecord {
  /** Stable code: an errno name (ENOENT) or one of stripemover's own (SOURCE_CHANGED, VERIFY_MISMATCH, ...). */
  code: string;
  errno?: number;
  syscall?: string;
  /** The path shown to people (non-UTF-8 bytes as \xNN). */
  path?: string;
  message: string;
}

/** Turns anything thrown (a native SysError, an Error, a string) into an ErrorRecord. */
export function toErrorRecord(err: unknown, fallbackPath?: string): ErrorRecord {
  const e = err as Partial<NodeJS.ErrnoException> & { message?: string };
  return {
    code: typeof e?.code === 'string' ? e.code : 'EUNKNOWN',
    ...(typeof e?.errno === 'number' ? { errno: e.errno } : {}),
    ...(typeof e?.syscall === 'string' ? { syscall: e.syscall } : {}),
    ...(typeof e?.path === 'string' ? { path: e.path } : fallbackPath ? { path: fallbackPath } : {}),
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

/** An error of stripemover's own, with a stable code. */
export class StripemoverError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** Path bytes for people: valid UTF-8 as is, other bytes as \xNN (as the addon's errors show them). */
export function displayPath(p: Buffer): string {
  const s = p.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(p)) return s;
  let out = '';
  for (let i = 0; i < p.length;) {
    // Find the longest valid UTF-8 prefix byte by byte.
    let n = 1;
    const c = p[i]!;
    if (c >= 0xc2 && c < 0xe0) n = 2;
    else if (c >= 0xe0 && c < 0xf0) n = 3;
    else if (c >= 0xf0 && c < 0xf5) n = 4;
    const piece = p.subarray(i, i + n);
    const decoded = piece.toString('utf8');
    if (c < 0x80) out += String.fromCharCode(c);
    else if (n > 1 && piece.length === n && Buffer.from(decoded, 'utf8').equals(piece)) out += decoded;
    else {
      out += `\\x${c.toString(16).toUpperCase().padStart(2, '0')}`;
      n = 1;
    }
    i += n;
  }
  return out;
}
