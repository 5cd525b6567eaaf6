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

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The error for a source whose size, mtime or ctime changed while it was being read. */
export function sourceChanged(path: Uint8Array): StripemoverError {
  const shown = displayPath(Buffer.from(path));
  return new StripemoverError('SOURCE_CHANGED', `source changed while it was being read: ${shown}`, shown);
}

/** Path bytes for people: valid UTF-8 as is, other bytes as \xNN (as the addon's errors show them). */
export function displayPath(p: Buffer): string {
  try {
    return utf8.decode(p);
  } catch {
    // fall through: byte by byte
  }
  let out = '';
  for (let i = 0; i < p.length;) {
    const c = p[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (n === 1) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    if (n > 1 && i + n <= p.length) {
      try {
        out += utf8.decode(p.subarray(i, i + n));
        i += n;
        continue;
      } catch {
        // not a valid sequence: show the lead byte
      }
    }
    out += `\\x${c.toString(16).toUpperCase().padStart(2, '0')}`;
    i++;
  }
  return out;
}
