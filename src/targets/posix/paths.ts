// Byte-path helpers for the POSIX target.
import { createHash } from 'node:crypto';

const SLASH = Buffer.from('/');

/** root + '/' + rel, as bytes; rel empty means root itself. */
export function joinPath(root: Uint8Array, rel: Uint8Array): Buffer {
  const r = Buffer.from(root.buffer, root.byteOffset, root.byteLength);
  if (rel.byteLength === 0) return r;
  return Buffer.concat([r, SLASH, Buffer.from(rel.buffer, rel.byteOffset, rel.byteLength)]);
}

/**
 * The name a file is written under before it is complete: hidden, in the same directory (so
 * the final rename is atomic), deterministic (so a resumed run finds and replaces it), and
 * short whatever the final name's length.
 */
export function tempPath(dstRoot: Uint8Array, rel: Uint8Array): Buffer {
  const r = Buffer.from(rel.buffer, rel.byteOffset, rel.byteLength);
  const slash = r.lastIndexOf(0x2f);
  const dir = slash < 0 ? Buffer.alloc(0) : r.subarray(0, slash);
  const tag = createHash('sha1').update(r).digest('hex').slice(0, 16);
  return joinPath(
    dstRoot,
    dir.length ? Buffer.concat([dir, SLASH, Buffer.from(`.sm-${tag}.tmp`)]) : Buffer.from(`.sm-${tag}.tmp`),
  );
}
