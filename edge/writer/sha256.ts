/**
 * The edge's SHA-256: hash-wasm's own binary, imported as a precompiled module because workerd
 * forbids runtime Wasm compilation (see shared/sha256.ts and scripts/generate.mjs). Its saved
 * states are the versioned format of docs/hash-state.md, the same bytes the browser and Node save,
 * and independent of the hash-wasm build: a deploy with another build loads them.
 */
import sha256Module from "../../shared/generated/sha256.wasm";
import { createResumableSha256, type Sha256Hasher } from "../../shared/sha256.ts";

/**
 * A resumable SHA-256 usable inside workerd, optionally continuing from a saved state; rejects
 * with a HashStateError (err.name === "HashStateError") when that state cannot be loaded.
 */
export function createEdgeSha256(state?: Uint8Array): Promise<Sha256Hasher> {
  return createResumableSha256(state ? { module: sha256Module, state } : { module: sha256Module });
}
