// XXH64 on the JS side (xxhash-wasm), giving the same digests as the addon and `xxhsum -H1`.
import { createReadStream } from 'node:fs';
import xxhash from 'xxhash-wasm';

export interface Hasher {
  update(data: Uint8Array): this;
  /** 16 lowercase hex digits. */
  digest(): string;
}

const api = await xxhash();

/** A streaming XXH64 in WebAssembly, for data that is already in JS memory. */
export function createXxh64(seed = 0n): Hasher {
  const state = api.create64(seed);
  const hasher: Hasher = {
    update(data) {
      state.update(data);
      return hasher;
    },
    digest: () => state.digest().toString(16).padStart(16, '0'),
  };
  return hasher;
}

/** XXH64 of a whole file read through Node streams: an independent check on the native hashFile. */
export async function hashFileJs(path: Buffer | string): Promise<string> {
  const hasher = createXxh64();
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hasher.update(chunk as Buffer);
  return hasher.digest();
}
