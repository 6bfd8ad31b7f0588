/**
 * The edge's SHA-256: hash-wasm's own binary, imported as a precompiled module because workerd
 * forbids runtime Wasm compilation (see shared/sha256.ts and scripts/generate.mjs).
 */
import sha256Module from "../shared/generated/sha256.wasm";
import { createResumableSha256, type ResumableSha256 } from "../shared/sha256.ts";

/** A resumable SHA-256 usable inside workerd, optionally continuing from a saved state. */
export function createEdgeSha256(state?: Uint8Array): Promise<ResumableSha256> {
  return createResumableSha256(state ? { module: sha256Module, state } : { module: sha256Module });
}
