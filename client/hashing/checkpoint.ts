/**
 * The hasher's checkpoint: what is saved so a hash resumes where it stopped, and the one rule for
 * trusting a stored one. A checkpoint is used only when its format version and file size match
 * and its state loads (docs/hash-state.md: the versioned SHA-256 midstate, independent of the
 * hash-wasm build) with a byte count equal to its offset: a wrong state would give a wrong digest,
 * which the edge would then refuse. Where checkpoints are kept is persist/'s business (IndexedDB
 * in browsers, JSON files in Node); the memory store here serves the tests.
 */
import { parseDigest, type Sha256Digest } from "../../shared/digest.ts";
import { HashStateError, sha256StateOffset } from "../../shared/sha256.ts";

export const CHECKPOINT_VERSION = 1;

export interface HashCheckpoint {
  v: typeof CHECKPOINT_VERSION;
  /** File size the state belongs to (a different size means a different file). */
  size: number;
  /** Bytes hashed into `state`. */
  offset: number;
  /** The SHA-256 state after `offset` bytes (docs/hash-state.md; hash-wasm 4.13.0's own bytes still load). */
  state: Uint8Array;
  /** Set once the whole file is hashed: a reload then does not hash again. */
  digest?: Sha256Digest;
}

export interface CheckpointStore {
  get(key: string): Promise<unknown>;
  set(key: string, checkpoint: HashCheckpoint): Promise<void>;
  delete(key: string): Promise<void>;
}

/** A stored checkpoint that can be trusted for a file of `size` bytes, or undefined. */
export function checkCheckpoint(value: unknown, size: number): HashCheckpoint | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const c = value as Partial<HashCheckpoint>;
  if (c.v !== CHECKPOINT_VERSION || c.size !== size) return undefined;
  if (typeof c.offset !== "number" || !Number.isInteger(c.offset) || c.offset < 0 || c.offset > size) return undefined;
  if (!(c.state instanceof Uint8Array) || stateOffset(c.state) !== c.offset) return undefined;
  if (c.digest !== undefined && (parseDigest(c.digest) === undefined || c.offset !== size)) return undefined;
  return c as HashCheckpoint;
}

/** Bytes hashed into `state`, or undefined when it cannot be loaded. */
function stateOffset(state: Uint8Array): number | undefined {
  try {
    return sha256StateOffset(state);
  } catch (err) {
    if (err instanceof HashStateError) return undefined;
    throw err;
  }
}

export function createMemoryCheckpointStore(): CheckpointStore & { entries: Map<string, HashCheckpoint> } {
  const entries = new Map<string, HashCheckpoint>();
  return {
    entries,
    get: async (key) => entries.get(key),
    set: async (key, c) => void entries.set(key, { ...c, state: c.state.slice() }),
    delete: async (key) => void entries.delete(key),
  };
}
