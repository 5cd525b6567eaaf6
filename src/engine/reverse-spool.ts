// A list of byte strings read back last-in first-out, in bounded memory: past `memoryLimit`
// entries it spills to a temporary file of records `[bytes][u32 length]`, which reads backwards
// without an index. The engine spools directories in scan order (parents first) and applies
// their metadata in reverse: children before parents, directory times last.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class ReverseSpool {
  private memory: Buffer[] = [];
  private file: { dir: string; fd: number; size: number } | undefined;

  constructor(private readonly memoryLimit = 65536) {}

  push(item: Buffer): void {
    // Its own copy: a scanned path is a view into a shared 8 KiB slab, which it would keep
    // alive (65,536 of them, half a GiB).
    const own = Buffer.allocUnsafeSlow(item.length);
    item.copy(own);
    this.memory.push(own);
    if (this.memory.length >= this.memoryLimit) this.spill();
  }

  /** Everything pushed, last first; the spool is empty afterwards. */
  *drain(): Generator<Buffer> {
    while (this.memory.length) yield this.memory.pop()!;
    if (!this.file) return;
    const { fd } = this.file;
    const length = Buffer.alloc(4);
    for (let end = this.file.size; end > 0;) {
      readSync(fd, length, 0, 4, end - 4);
      const n = length.readUInt32LE(0);
      const item = Buffer.allocUnsafe(n);
      readSync(fd, item, 0, n, end - 4 - n);
      end -= 4 + n;
      yield item;
    }
    this.close();
  }

  close(): void {
    if (!this.file) return;
    closeSync(this.file.fd);
    rmSync(this.file.dir, { recursive: true, force: true });
    this.file = undefined;
  }

  private spill(): void {
    if (!this.file) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'stripemover-spool-'));
      this.file = { dir, fd: openSync(path.join(dir, 'spool'), 'w+'), size: 0 };
    }
    const parts: Buffer[] = [];
    for (const item of this.memory) {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(item.length, 0);
      parts.push(item, length);
    }
    const block = Buffer.concat(parts);
    writeSync(this.file.fd, block, 0, block.length, this.file.size);
    this.file.size += block.length;
    this.memory = [];
  }
}
