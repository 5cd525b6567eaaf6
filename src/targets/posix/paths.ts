// Byte-path helpers for the POSIX target.
import { native } from '../../native.js';

const SLASH = Buffer.from('/');

/** root + '/' + rel, as bytes; rel empty means root itself. */
export function joinPath(root: Uint8Array, rel: Uint8Array): Buffer {
  const r = Buffer.from(root.buffer, root.byteOffset, root.byteLength);
  if (rel.byteLength === 0) return r;
  return Buffer.concat([r, SLASH, Buffer.from(rel.buffer, rel.byteOffset, rel.byteLength)]);
}

/** Where a file is written before it is complete: the addon names it (it writes whole files there too). */
export function tempPath(dstRoot: Uint8Array, rel: Uint8Array): Buffer {
  return joinPath(dstRoot, native.tempName(rel));
}
