// A file of JSON lines written and read back in order, in bounded memory (a 1 MiB buffer each
// way): where a backup spools what it scanned until the manifest pass.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

const BUFFER = 1 << 20;

export class JsonLinesWriter {
  private readonly fd: number;
  private parts: string[] = [];
  private size = 0;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'w', 0o600);
  }

  write(value: unknown): void {
    const line = JSON.stringify(value) + '\n';
    this.parts.push(line);
    this.size += line.length;
    if (this.size >= BUFFER) this.flush();
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** The values of a JSON-lines file, in order. */
export function* readJsonLines<T>(file: string): Generator<T> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(BUFFER);
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, BUFFER, null);
      if (n === 0) break;
      const text = rest + buf.toString('utf8', 0, n);
      const lines = text.split('\n');
      rest = lines.pop()!;
      for (const line of lines) yield JSON.parse(line) as T;
    }
    if (rest !== '') yield JSON.parse(rest) as T;
  } finally {
    closeSync(fd);
  }
}
