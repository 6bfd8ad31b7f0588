/**
 * Resumable SHA-256 with one saved-state format for the browser, Node and workerd.
 *
 * Where runtime Wasm compilation is allowed (browsers, Node) this is hash-wasm's createSHA256.
 * workerd forbids it, so the edge passes hash-wasm's own SHA-256 binary as a precompiled
 * `WebAssembly.Module` (a static `.wasm` import, see scripts/generate.mjs) and this file drives
 * its exports the same way hash-wasm does. Either way `save()` returns hash-wasm's bytes: the
 * 4-byte binary id followed by the internal state, so a state saved on one side loads on the
 * other, and a state from another hash-wasm build is refused instead of silently trusted.
 */
import { createSHA256 } from "hash-wasm";
import { SHA256_WASM_ID } from "./generated/sha256-wasm.ts";

/** An incremental SHA-256 whose state can be saved between requests or page loads. */
export interface ResumableSha256 {
  update(data: Uint8Array): void;
  /** hash-wasm's state bytes: 4-byte binary id + internal state (116 bytes for SHA-256). */
  save(): Uint8Array;
  /** The 32-byte digest. Ends this hasher: call nothing else on it afterwards. */
  digest(): Uint8Array;
}

export interface ResumableSha256Options {
  /** hash-wasm's SHA-256 binary, precompiled; required where runtime compilation is disallowed. */
  module?: WebAssembly.Module;
  /** A state from `save()` to continue from. */
  state?: Uint8Array;
}

/** Thrown when a saved state cannot be loaded: wrong length or another hash-wasm build. */
export class HashStateError extends Error {
  override readonly name = "HashStateError";
  // A plain field, not a parameter property: the CLI runs this file under Node's type stripping.
  readonly reason: string;
  constructor(reason: string) {
    super(`unusable SHA-256 state: ${reason}`);
    this.reason = reason;
  }
}

/** Bytes of a saved SHA-256 state in hash-wasm 4.x's format. */
export const SHA256_STATE_LENGTH = 4 + 112;

/** The binary id hash-wasm writes in front of every SHA-256 state it saves (hex). */
export const SHA256_STATE_ID = SHA256_WASM_ID;

/** True when `state` looks like a state this build can load (length and binary id). */
export function isCompatibleSha256State(state: Uint8Array): boolean {
  return state.length === SHA256_STATE_LENGTH && toHex(state.subarray(0, 4)) === SHA256_STATE_ID;
}

export async function createResumableSha256(options: ResumableSha256Options = {}): Promise<ResumableSha256> {
  if (options.state && !isCompatibleSha256State(options.state)) {
    throw new HashStateError(
      options.state.length !== SHA256_STATE_LENGTH
        ? `expected ${SHA256_STATE_LENGTH} bytes, got ${options.state.length}`
        : `binary id ${toHex(options.state.subarray(0, 4))} is not ${SHA256_STATE_ID}`,
    );
  }
  const hasher = options.module ? await fromModule(options.module) : await fromHashWasm();
  if (options.state) hasher.load(options.state);
  return hasher;
}

/** One-shot SHA-256 of in-memory bytes. */
export async function sha256(data: Uint8Array, module?: WebAssembly.Module): Promise<Uint8Array> {
  const hasher = await createResumableSha256(module ? { module } : {});
  hasher.update(data);
  return hasher.digest();
}

interface LoadableSha256 extends ResumableSha256 {
  load(state: Uint8Array): void;
}

async function fromHashWasm(): Promise<LoadableSha256> {
  const h = await createSHA256();
  return {
    update: (data) => void h.update(data),
    save: () => h.save(),
    load: (state) => void h.load(state),
    digest: () => h.digest("binary"),
  };
}

interface Sha256Exports {
  memory: WebAssembly.Memory;
  Hash_GetBuffer(): number;
  Hash_Init(bits: number): void;
  Hash_Update(length: number): void;
  Hash_Final(padding: number): void;
  Hash_GetState(): number;
  STATE_SIZE: WebAssembly.Global;
}

/** hash-wasm's I/O window into Wasm memory; updates are fed through it in slices of this size. */
const MAX_HEAP = 16 * 1024;

/** The same calls hash-wasm's WASMInterface makes, over a module we were handed precompiled. */
async function fromModule(module: WebAssembly.Module): Promise<LoadableSha256> {
  const instance = await WebAssembly.instantiate(module, {});
  const x = instance.exports as unknown as Sha256Exports;
  const io = () => new Uint8Array(x.memory.buffer, x.Hash_GetBuffer(), MAX_HEAP);
  const stateSize = () => new DataView(x.memory.buffer).getUint32(x.STATE_SIZE.value as number, true);
  const state = () => new Uint8Array(x.memory.buffer, x.Hash_GetState(), stateSize());
  x.Hash_Init(256);
  return {
    update(data) {
      const window = io();
      for (let read = 0; read < data.length; read += MAX_HEAP) {
        const chunk = data.subarray(read, read + MAX_HEAP);
        window.set(chunk);
        x.Hash_Update(chunk.length);
      }
    },
    save() {
      const internal = state();
      const out = new Uint8Array(4 + internal.length);
      out.set(fromHex(SHA256_STATE_ID));
      out.set(internal, 4);
      return out;
    },
    load(saved) {
      state().set(saved.subarray(4));
    },
    digest() {
      x.Hash_Final(0);
      return io().slice(0, 32);
    },
  };
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
