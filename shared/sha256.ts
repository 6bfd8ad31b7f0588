/**
 * Resumable SHA-256 with one saved-state format for the browser, Node and workerd.
 *
 * Where runtime Wasm compilation is allowed (browsers, Node) this is hash-wasm's createSHA256.
 * workerd forbids it, so the edge passes hash-wasm's own SHA-256 binary as a precompiled
 * `WebAssembly.Module` (a static `.wasm` import, see scripts/generate.mjs) and this file drives
 * its exports the same way hash-wasm does.
 *
 * `save()` returns our own versioned format, not hash-wasm's (docs/hash-state.md,
 * shared/sha256-state.ts): "S256", version 1, the eight chaining words, the byte count and the
 * buffered tail. It names no hash-wasm build, so a state saved before a deploy that changes
 * hash-wasm still loads after it; loading rebuilds the internal state of whichever build runs.
 * Each hasher first checks that build's internal layout against the plain-TypeScript reference
 * (shared/sha256-reference.ts); a build whose layout differs is never misread: the reference
 * then does the hashing (slower, same results) and tests fail loudly on the upgrade.
 * hash-wasm's own 116-byte `save()` of the pinned build (the format before version 1) still loads.
 */
import { createSHA256 } from "hash-wasm";
import { ReferenceSha256, type Sha256Midstate } from "./sha256-reference.ts";
import {
  decodeSha256State,
  encodeSha256State,
  fromHashWasmState,
  HASH_WASM_STATE_LENGTH,
  HashStateError,
  isSha256State,
  toHashWasmState,
} from "./sha256-state.ts";

export { HashStateError } from "./sha256-state.ts";
export { SHA256_STATE_MAX_LENGTH, SHA256_STATE_MIN_LENGTH } from "./sha256-state.ts";

/** An incremental SHA-256 whose state can be saved between requests or page loads. */
export interface ResumableSha256 {
  update(data: Uint8Array): void;
  /** The state in our format (docs/hash-state.md): 45 + (bytes hashed mod 64) bytes. */
  save(): Uint8Array;
  /** The 32-byte digest. Ends this hasher: call nothing else on it afterwards. */
  digest(): Uint8Array;
}

export interface ResumableSha256Options {
  /** hash-wasm's SHA-256 binary, precompiled; required where runtime compilation is disallowed. */
  module?: WebAssembly.Module;
  /** A state from `save()` (or the pinned hash-wasm build's own `save()`) to continue from. */
  state?: Uint8Array;
}

/** True when `state` can be loaded: our format, or the pinned hash-wasm build's own bytes. */
export function isCompatibleSha256State(state: Uint8Array): boolean {
  return isSha256State(state);
}

/** Bytes hashed into a saved state (throws HashStateError when it cannot be loaded). */
export function sha256StateOffset(state: Uint8Array): number {
  return decodeSha256State(state).count;
}

/** A hasher as made here: which implementation runs is visible, for tests and diagnostics. */
export interface Sha256Hasher extends ResumableSha256 {
  /** "reference" only when the hash-wasm build's state layout is not the known one. */
  readonly implementation: "hash-wasm" | "reference";
}

let warned = false;

export async function createResumableSha256(options: ResumableSha256Options = {}): Promise<Sha256Hasher> {
  // Decoded before any Wasm is instantiated: a bad state costs nothing and says why.
  const from = options.state ? decodeSha256State(options.state) : undefined;
  const engine = options.module ? await fromModule(options.module) : await fromHashWasm();
  let hasher = engine;
  if (!checkEngineLayout(engine)) {
    if (!warned) console.warn("hash-wasm's SHA-256 state layout is not the known one: hashing with the slower TypeScript SHA-256");
    warned = true;
    hasher = fromReference();
  }
  if (from) hasher.load(from);
  return hasher;
}

/** What checkEngineLayout drives: a hasher plus raw access to its midstate. */
export interface Sha256Engine extends Sha256Hasher {
  load(m: Sha256Midstate): void;
  /** Back to the empty message. */
  reset(): void;
  /** The midstate read from the engine (undefined when its state is not hash-wasm's layout). */
  midstate(): Sha256Midstate | undefined;
}

/**
 * Whether `engine`'s internal state has the layout sha256-state.ts converts: 67 bytes (a block
 * and a 3-byte tail) must read back as the reference's midstate, and that midstate loaded into a
 * reset engine and continued by 66 bytes (completing a block from the loaded tail) must read back
 * as the reference's after 133. Leaves the engine reset.
 */
export function checkEngineLayout(engine: Sha256Engine): boolean {
  const probe = Uint8Array.from({ length: 133 }, (_, i) => (i * 37 + 11) & 0xff);
  const reference = new ReferenceSha256();
  reference.update(probe.subarray(0, 67));
  const at67 = reference.midstate();
  reference.update(probe.subarray(67));
  const at133 = reference.midstate();
  const matches = (m: Sha256Midstate | undefined, expected: Sha256Midstate) => m !== undefined && sameBytes(encodeSha256State(m), encodeSha256State(expected));
  try {
    engine.update(probe.subarray(0, 67));
    if (!matches(engine.midstate(), at67)) return false;
    engine.reset();
    engine.load(at67);
    engine.update(probe.subarray(67));
    return matches(engine.midstate(), at133);
  } catch (err) {
    if (err instanceof HashStateError) return false;
    throw err;
  } finally {
    engine.reset();
  }
}

async function fromHashWasm(): Promise<Sha256Engine> {
  const h = await createSHA256();
  // The 4-byte binary id hash-wasm's load() insists on, taken from this very build.
  const id = h.save().slice(0, 4);
  const midstate = () => {
    const internal = h.save().subarray(4);
    return internal.length === HASH_WASM_STATE_LENGTH ? fromHashWasmState(internal) : undefined;
  };
  return {
    implementation: "hash-wasm",
    update: (data) => void h.update(data),
    save: () => encodeSha256State(mustRead(midstate())),
    load(m) {
      const bytes = new Uint8Array(4 + HASH_WASM_STATE_LENGTH);
      bytes.set(id);
      bytes.set(toHashWasmState(m), 4);
      h.load(bytes);
    },
    reset: () => void h.init(),
    midstate,
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
async function fromModule(module: WebAssembly.Module): Promise<Sha256Engine> {
  const instance = await WebAssembly.instantiate(module, {});
  const x = instance.exports as unknown as Sha256Exports;
  const io = () => new Uint8Array(x.memory.buffer, x.Hash_GetBuffer(), MAX_HEAP);
  const stateSize = () => new DataView(x.memory.buffer).getUint32(x.STATE_SIZE.value as number, true);
  const state = () => new Uint8Array(x.memory.buffer, x.Hash_GetState(), stateSize());
  const midstate = () => {
    const internal = state();
    return internal.length === HASH_WASM_STATE_LENGTH ? fromHashWasmState(internal) : undefined;
  };
  x.Hash_Init(256);
  return {
    implementation: "hash-wasm",
    update(data) {
      const window = io();
      for (let read = 0; read < data.length; read += MAX_HEAP) {
        const chunk = data.subarray(read, read + MAX_HEAP);
        window.set(chunk);
        x.Hash_Update(chunk.length);
      }
    },
    save: () => encodeSha256State(mustRead(midstate())),
    load(m) {
      state().set(toHashWasmState(m));
    },
    reset: () => x.Hash_Init(256),
    midstate,
    digest() {
      x.Hash_Final(0);
      return io().slice(0, 32);
    },
  };
}

/** The plain-TypeScript hasher, for a hash-wasm build whose state layout is not the known one. */
function fromReference(): Sha256Engine {
  let h = new ReferenceSha256();
  return {
    implementation: "reference",
    update: (data) => h.update(data),
    save: () => encodeSha256State(h.midstate()),
    load: (m) => void (h = new ReferenceSha256(m)),
    reset: () => void (h = new ReferenceSha256()),
    midstate: () => h.midstate(),
    digest: () => h.digest(),
  };
}

function mustRead(m: Sha256Midstate | undefined): Sha256Midstate {
  // Unreachable once checkEngineLayout passed for this engine; a guard, not a code path.
  if (!m) throw new Error("hash-wasm's SHA-256 state has an unexpected size");
  return m;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
