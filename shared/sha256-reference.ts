/**
 * SHA-256 in plain TypeScript (FIPS 180-4), exposing its midstate.
 *
 * Why it exists beside hash-wasm: the saved-state format (docs/hash-state.md) is defined by
 * FIPS 180-4's own quantities, not by any hash-wasm build, and this is the independent oracle
 * that says what those quantities are. shared/sha256.ts checks hash-wasm's internal layout
 * against it before trusting a conversion, and falls back to it (correct, ~5x slower) when a
 * hash-wasm build's layout no longer matches; tests in Node and workerd compute expected states
 * with it.
 */

/** SHA-256's midstate after `count` bytes: the chaining words and the bytes not yet compressed. */
export interface Sha256Midstate {
  /** H0..H7, each an unsigned 32-bit integer. */
  readonly words: Uint32Array;
  /** Bytes hashed so far (a safe integer). */
  readonly count: number;
  /** The last `count % 64` bytes, not yet compressed. */
  readonly tail: Uint8Array;
}

/** FIPS 180-4 5.3.3: the initial hash value. */
export const SHA256_IV: readonly number[] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74,
  0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d,
  0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e,
  0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
  0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

/** Compresses the 64-byte block at `data[at..at+64)` into `h` (FIPS 180-4 6.2.2). */
function compress(h: Uint32Array, w: Uint32Array, data: Uint8Array, at: number): void {
  for (let t = 0; t < 16; t++) {
    const i = at + 4 * t;
    w[t] = ((data[i] ?? 0) << 24) | ((data[i + 1] ?? 0) << 16) | ((data[i + 2] ?? 0) << 8) | (data[i + 3] ?? 0);
  }
  for (let t = 16; t < 64; t++) {
    const w15 = w[t - 15] ?? 0;
    const w2 = w[t - 2] ?? 0;
    const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
    w[t] = (w[t - 16] ?? 0) + s0 + (w[t - 7] ?? 0) + s1;
  }
  let a = h[0] ?? 0,
    b = h[1] ?? 0,
    c = h[2] ?? 0,
    d = h[3] ?? 0;
  let e = h[4] ?? 0,
    f = h[5] ?? 0,
    g = h[6] ?? 0,
    hh = h[7] ?? 0;
  for (let t = 0; t < 64; t++) {
    const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + (K[t] ?? 0) + (w[t] ?? 0)) | 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0] ?? 0) + a;
  h[1] = (h[1] ?? 0) + b;
  h[2] = (h[2] ?? 0) + c;
  h[3] = (h[3] ?? 0) + d;
  h[4] = (h[4] ?? 0) + e;
  h[5] = (h[5] ?? 0) + f;
  h[6] = (h[6] ?? 0) + g;
  h[7] = (h[7] ?? 0) + hh;
}

/** An incremental SHA-256 in plain TypeScript; `midstate()` and a start midstate make it resumable. */
export class ReferenceSha256 {
  private readonly h: Uint32Array;
  private readonly w = new Uint32Array(64);
  private readonly block = new Uint8Array(64);
  private count: number;

  constructor(from?: Sha256Midstate) {
    this.h = Uint32Array.from(from ? from.words : SHA256_IV);
    this.count = from ? from.count : 0;
    if (from) this.block.set(from.tail);
  }

  update(data: Uint8Array): void {
    let used = this.count % 64;
    let at = 0;
    this.count += data.length;
    if (used > 0) {
      const take = Math.min(64 - used, data.length);
      this.block.set(data.subarray(0, take), used);
      at = take;
      used += take;
      if (used < 64) return;
      compress(this.h, this.w, this.block, 0);
    }
    for (; at + 64 <= data.length; at += 64) compress(this.h, this.w, data, at);
    this.block.set(data.subarray(at));
  }

  midstate(): Sha256Midstate {
    return { words: this.h.slice(), count: this.count, tail: this.block.slice(0, this.count % 64) };
  }

  /** The 32-byte digest; the hasher is not usable afterwards. */
  digest(): Uint8Array {
    const bits = this.count * 8;
    const used = this.count % 64;
    const padded = new Uint8Array(used < 56 ? 64 : 128);
    padded.set(this.block.subarray(0, used));
    padded[used] = 0x80;
    const view = new DataView(padded.buffer);
    // The bit length as a 64-bit big-endian integer; `bits` can exceed 2^32, so split it by division.
    view.setUint32(padded.length - 8, Math.floor(bits / 2 ** 32));
    view.setUint32(padded.length - 4, bits >>> 0);
    for (let at = 0; at < padded.length; at += 64) compress(this.h, this.w, padded, at);
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setUint32(4 * i, this.h[i] ?? 0);
    return out;
  }
}
