/**
 * The hashing loop, shared by the browser's Web Worker and Node: read the file in slices, feed
 * hash-wasm's SHA-256, save `{offset, state}` at least every `checkpointInterval` bytes and on
 * pause, and start from the newest usable checkpoint. A checkpoint is used only when its format
 * version, file size and hash-wasm binary id all match; anything else is discarded and hashing
 * starts from 0: a wrong state would give a wrong digest, which the edge would then refuse.
 */
import { createResumableSha256, isCompatibleSha256State } from "../shared/sha256.ts";
import { formatDigest, parseDigest, type Sha256Digest } from "../shared/digest.ts";

export const CHECKPOINT_VERSION = 1;
const MiB = 1024 * 1024;
export const DEFAULT_CHECKPOINT_INTERVAL = 16 * MiB;
export const DEFAULT_SLICE_SIZE = 4 * MiB;

export interface HashCheckpoint {
  v: typeof CHECKPOINT_VERSION;
  /** File size the state belongs to (a different size means a different file). */
  size: number;
  /** Bytes hashed into `state`. */
  offset: number;
  /** hash-wasm's saved state (binary id + internal state). */
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
  if (!(c.state instanceof Uint8Array) || !isCompatibleSha256State(c.state)) return undefined;
  if (c.digest !== undefined && (parseDigest(c.digest) === undefined || c.offset !== size)) return undefined;
  return c as HashCheckpoint;
}

export interface HashJobOptions {
  key: string;
  size: number;
  /** Reads bytes [start, end) of the file. */
  read(start: number, end: number): Promise<Uint8Array>;
  checkpoints: CheckpointStore;
  checkpointInterval?: number;
  sliceSize?: number;
  /** Stops at the next slice boundary; the job then saves a checkpoint and returns "paused". */
  signal?: AbortSignal;
  /** Bytes per second at most (average), 0/undefined for no limit. */
  rate?: number;
  /** After each slice: offset hashed so far and bytes read in this run. */
  onProgress?(offset: number, bytesRead: number): void;
  /** Once, before the first slice: where this run starts (undefined when from 0 with no checkpoint). */
  onStart?(resumedAt: number | undefined): void;
}

export type HashJobResult =
  | { kind: "done"; digest: Sha256Digest; resumedAt: number | undefined; bytesRead: number }
  | { kind: "paused"; offset: number; resumedAt: number | undefined; bytesRead: number };

export async function runHashJob(o: HashJobOptions): Promise<HashJobResult> {
  const interval = Math.max(1, o.checkpointInterval ?? DEFAULT_CHECKPOINT_INTERVAL);
  // Slices never straddle a checkpoint boundary, so at most `interval` bytes are ever unsaved.
  const slice = Math.max(1, Math.min(o.sliceSize ?? DEFAULT_SLICE_SIZE, interval));

  const saved = checkCheckpoint(await o.checkpoints.get(o.key), o.size);
  const resumedAt = saved ? saved.offset : undefined;
  o.onStart?.(resumedAt);
  if (saved?.digest) return { kind: "done", digest: saved.digest, resumedAt, bytesRead: 0 };

  const hasher = await createResumableSha256(saved ? { state: saved.state } : {});
  let offset = saved?.offset ?? 0;
  let lastSaved = offset;
  let bytesRead = 0;
  const started = Date.now();
  const save = async (digest?: Sha256Digest) => {
    await o.checkpoints.set(o.key, { v: CHECKPOINT_VERSION, size: o.size, offset, state: hasher.save(), ...(digest ? { digest } : {}) });
    lastSaved = offset;
  };

  while (offset < o.size) {
    if (o.signal?.aborted) {
      if (offset > lastSaved) await save();
      return { kind: "paused", offset, resumedAt, bytesRead };
    }
    const nextBoundary = (Math.floor(offset / interval) + 1) * interval;
    const end = Math.min(o.size, offset + slice, nextBoundary);
    const bytes = await o.read(offset, end);
    if (bytes.length !== end - offset) throw new Error(`short read at ${offset}: ${bytes.length} of ${end - offset} bytes`);
    hasher.update(bytes);
    offset = end;
    bytesRead += bytes.length;
    // Awaited on purpose: hashing does not run ahead of the last saved state by more than one interval.
    if (offset - lastSaved >= interval && offset < o.size) await save();
    o.onProgress?.(offset, bytesRead);
    if (o.rate) await delayForRate(started, bytesRead, o.rate);
  }
  const finalState = hasher.save();
  const digest = formatDigest(hasher.digest());
  // Keep the finished digest until the upload is done (a reload in between must not re-hash).
  await o.checkpoints.set(o.key, { v: CHECKPOINT_VERSION, size: o.size, offset, state: finalState, digest });
  return { kind: "done", digest, resumedAt, bytesRead };
}

/** Sleeps so that `bytes` since `started` average at most `rate` bytes per second. */
export async function delayForRate(started: number, bytes: number, rate: number): Promise<void> {
  const wait = started + (bytes / rate) * 1000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
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
