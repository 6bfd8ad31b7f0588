/**
 * The saved SHA-256 state: our own versioned format (docs/hash-state.md), and the conversions
 * to and from hash-wasm's internal state.
 *
 * Why our own format: hash-wasm's `save()` bytes are its C struct prefixed with a 4-byte id of
 * the exact Wasm binary, so a state saved before a deploy that changes hash-wasm's build is
 * refused after it, although SHA-256's midstate means the same thing in every implementation.
 * Version 1, all integers big-endian:
 *
 *   offset  size  field
 *   0       4     magic, ASCII "S256"
 *   4       1     format version, 1
 *   5       32    H0..H7, the chaining words (FIPS 180-4), 4 bytes each
 *   37      8     count: bytes hashed so far (at most 2^53 - 1)
 *   45      n     tail: the last n = count mod 64 bytes, not yet compressed
 *
 * so a state is 45 + (count mod 64) bytes: 45..108.
 *
 * hash-wasm 4.x's SHA-256 state (src/sha256.c `struct sha256_ctx`, little-endian Wasm memory):
 * `uint32_t message[16]` (the unprocessed bytes, in input order, at 0), `uint64_t length` (bytes,
 * at 64), `uint32_t hash[8]` (at 72), `uint32_t digest_length` (32 for SHA-256, at 104), 4 bytes
 * of padding: 112 bytes. shared/sha256.ts checks this layout against ReferenceSha256 on every
 * hasher it makes, so a build that changes it is detected rather than misread.
 */
import { SHA256_WASM_ID } from "./generated/sha256-wasm.ts";
import type { Sha256Midstate } from "./sha256-reference.ts";

/** Thrown when a saved state cannot be loaded; `reason` says why. */
export class HashStateError extends Error {
  override readonly name = "HashStateError";
  // A plain field, not a parameter property: the CLI runs this file under Node's type stripping.
  readonly reason: string;
  constructor(reason: string) {
    super(`unusable SHA-256 state: ${reason}`);
    this.reason = reason;
  }
}

/** ASCII "S256". */
export const SHA256_STATE_MAGIC = Uint8Array.from([0x53, 0x32, 0x35, 0x36]);
export const SHA256_STATE_VERSION = 1;
/** Bytes before the tail: magic, version, eight words, count. */
export const SHA256_STATE_HEADER_LENGTH = 4 + 1 + 32 + 8;
/** A state's length is HEADER + count mod 64, so between these two. */
export const SHA256_STATE_MIN_LENGTH = SHA256_STATE_HEADER_LENGTH;
export const SHA256_STATE_MAX_LENGTH = SHA256_STATE_HEADER_LENGTH + 63;

/** hash-wasm 4.x: bytes of its internal SHA-256 state, and what it prefixes in `save()`. */
export const HASH_WASM_STATE_LENGTH = 112;
/** The pinned build's `save()` length: its 4-byte binary id + the internal state. */
export const LEGACY_STATE_LENGTH = 4 + HASH_WASM_STATE_LENGTH;

export function encodeSha256State(m: Sha256Midstate): Uint8Array {
  checkMidstate(m);
  const out = new Uint8Array(SHA256_STATE_HEADER_LENGTH + m.tail.length);
  const view = new DataView(out.buffer);
  out.set(SHA256_STATE_MAGIC, 0);
  out[4] = SHA256_STATE_VERSION;
  for (let i = 0; i < 8; i++) view.setUint32(5 + 4 * i, m.words[i] ?? 0);
  view.setBigUint64(37, BigInt(m.count));
  out.set(m.tail, SHA256_STATE_HEADER_LENGTH);
  return out;
}

/**
 * The midstate in `state`: our format, or (migration) the `save()` bytes of the pinned
 * hash-wasm build, which was the format before version 1. Throws HashStateError otherwise.
 */
export function decodeSha256State(state: Uint8Array): Sha256Midstate {
  if (!(state instanceof Uint8Array)) throw new HashStateError("not a byte array");
  if (state.length === LEGACY_STATE_LENGTH && !hasMagic(state)) return decodeLegacy(state);
  if (state.length < 5 || !hasMagic(state)) {
    throw new HashStateError(`not a saved SHA-256 state: no "S256" header (${state.length} bytes starting ${toHex(state.subarray(0, 5))})`);
  }
  const version = state[4];
  if (version !== SHA256_STATE_VERSION) {
    throw new HashStateError(`format version ${version} is not one this build reads (${SHA256_STATE_VERSION})`);
  }
  if (state.length < SHA256_STATE_MIN_LENGTH || state.length > SHA256_STATE_MAX_LENGTH) {
    throw new HashStateError(`version 1 is ${SHA256_STATE_MIN_LENGTH}..${SHA256_STATE_MAX_LENGTH} bytes, got ${state.length}`);
  }
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  const count = view.getBigUint64(37);
  if (count > BigInt(Number.MAX_SAFE_INTEGER)) throw new HashStateError(`byte count ${count} is beyond 2^53 - 1`);
  const n = Number(count);
  const tailLength = state.length - SHA256_STATE_HEADER_LENGTH;
  if (tailLength !== n % 64) {
    throw new HashStateError(`byte count ${n} needs a ${n % 64}-byte tail, the state has ${tailLength}`);
  }
  const words = new Uint32Array(8);
  for (let i = 0; i < 8; i++) words[i] = view.getUint32(5 + 4 * i);
  return { words, count: n, tail: state.slice(SHA256_STATE_HEADER_LENGTH) };
}

/** True when `state` decodes (our format, or the pinned hash-wasm build's own `save()`). */
export function isSha256State(state: Uint8Array): boolean {
  try {
    decodeSha256State(state);
    return true;
  } catch (err) {
    if (err instanceof HashStateError) return false;
    throw err;
  }
}

/** The midstate in hash-wasm's internal SHA-256 state (the 112 bytes after `save()`'s id). */
export function fromHashWasmState(internal: Uint8Array): Sha256Midstate {
  if (internal.length !== HASH_WASM_STATE_LENGTH) {
    throw new HashStateError(`hash-wasm's SHA-256 state is ${HASH_WASM_STATE_LENGTH} bytes, got ${internal.length}`);
  }
  const view = new DataView(internal.buffer, internal.byteOffset, internal.byteLength);
  const digestLength = view.getUint32(104, true);
  if (digestLength !== 32) throw new HashStateError(`hash-wasm state of a ${digestLength}-byte digest, not SHA-256's 32`);
  const length = view.getBigUint64(64, true);
  if (length > BigInt(Number.MAX_SAFE_INTEGER)) throw new HashStateError(`byte count ${length} is beyond 2^53 - 1`);
  const count = Number(length);
  const words = new Uint32Array(8);
  for (let i = 0; i < 8; i++) words[i] = view.getUint32(72 + 4 * i, true);
  return { words, count, tail: internal.slice(0, count % 64) };
}

/** hash-wasm's internal SHA-256 state for `m` (to write where `Hash_GetState()` points). */
export function toHashWasmState(m: Sha256Midstate): Uint8Array {
  checkMidstate(m);
  const out = new Uint8Array(HASH_WASM_STATE_LENGTH);
  const view = new DataView(out.buffer);
  out.set(m.tail, 0);
  view.setBigUint64(64, BigInt(m.count), true);
  for (let i = 0; i < 8; i++) view.setUint32(72 + 4 * i, m.words[i] ?? 0, true);
  view.setUint32(104, 32, true);
  return out;
}

function decodeLegacy(state: Uint8Array): Sha256Midstate {
  // The id names one Wasm binary; only the pinned build's layout is known, so only it migrates.
  const id = toHex(state.subarray(0, 4));
  if (id !== SHA256_WASM_ID) {
    throw new HashStateError(`a hash-wasm state of binary ${id}, not this build's ${SHA256_WASM_ID}: its layout is unknown`);
  }
  return fromHashWasmState(state.subarray(4));
}

function checkMidstate(m: Sha256Midstate): void {
  if (m.words.length !== 8) throw new HashStateError(`expected 8 words, got ${m.words.length}`);
  if (!Number.isSafeInteger(m.count) || m.count < 0) throw new HashStateError(`byte count ${m.count} is not a safe integer >= 0`);
  if (m.tail.length !== m.count % 64) throw new HashStateError(`byte count ${m.count} needs a ${m.count % 64}-byte tail, got ${m.tail.length}`);
}

function hasMagic(state: Uint8Array): boolean {
  return SHA256_STATE_MAGIC.every((b, i) => state[i] === b);
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
