/**
 * The hashing loop, shared by the browser's Web Worker and Node: read the file in slices, feed
 * hash-wasm's SHA-256, save `{offset, state}` every half `checkpointInterval` (written behind the
 * hashing, never more than one interval behind it) and on pause, and start from the newest
 * usable checkpoint (checkpoint.ts says which are usable; anything else means starting at 0).
 */
import { formatDigest, type Sha256Digest } from "../../shared/digest.ts";
import { createResumableSha256, HashStateError } from "../../shared/sha256.ts";
import { delayForRate } from "../progress.ts";
import { CHECKPOINT_VERSION, type CheckpointStore, checkCheckpoint, type HashCheckpoint } from "./checkpoint.ts";

const MiB = 1024 * 1024;
export const DEFAULT_CHECKPOINT_INTERVAL = 16 * MiB;
export const DEFAULT_SLICE_SIZE = 4 * MiB;

/**
 * A hasher from the stored checkpoint, or from byte 0 when there is none or its state does not
 * load after all (checkCheckpoint decodes it, but the hasher is the final judge): the bad
 * checkpoint is then deleted, so the next run does not trip over it again.
 */
async function openHasher(o: HashJobOptions, saved: HashCheckpoint | undefined) {
  if (saved) {
    try {
      return { hasher: await createResumableSha256({ state: saved.state }), saved };
    } catch (err) {
      if (!(err instanceof HashStateError)) throw err;
      await o.checkpoints.delete(o.key);
    }
  }
  return { hasher: await createResumableSha256(), saved: undefined };
}

export interface HashJobOptions {
  key: string;
  size: number;
  /** Reads bytes [start, end) of the file (used when `stream` is absent). */
  read(start: number, end: number): Promise<Uint8Array>;
  /**
   * The file's bytes from `start` to its end, as a stream. Preferred when given: Chromium streams
   * a File about twice as fast as it hands out `slice().arrayBuffer()`s (measured here: ~640
   * against ~240-360 MB/s), and hashing runs at ~200-270 MB/s, so slices would make reading the
   * bottleneck.
   */
  stream?(start: number): ReadableStream<Uint8Array>;
  /**
   * The file's bytes from `start`, preferred over `stream`: the browser's worker gets them from a
   * reader worker (reader.ts), so reading costs the hashing thread nothing. A chunk
   * need only stay valid until the next one is asked for (buffers are reused).
   */
  chunks?(start: number): AsyncIterable<Uint8Array>;
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
  const slice = Math.max(1, o.sliceSize ?? DEFAULT_SLICE_SIZE);

  const stored = checkCheckpoint(await o.checkpoints.get(o.key), o.size);
  if (stored?.digest) {
    o.onStart?.(stored.offset);
    return { kind: "done", digest: stored.digest, resumedAt: stored.offset, bytesRead: 0 };
  }
  const { hasher, saved } = await openHasher(o, stored);
  const resumedAt = saved ? saved.offset : undefined;
  o.onStart?.(resumedAt);

  let offset = saved?.offset ?? 0;
  let lastSaved = offset;
  let bytesRead = 0;
  const started = Date.now();
  // Checkpoints are written behind the hashing, every half interval: a save k is awaited only when
  // save k+1 is due, so IndexedDB's latency stays off the hashing path, and when the job dies the
  // newest durable checkpoint is never more than one interval behind (save k-1 done, k in flight).
  const step = Math.max(1, Math.floor(interval / 2));
  let inFlight: Promise<void> = Promise.resolve();
  let lastStarted = offset;
  const saveBehind = async () => {
    await inFlight;
    const checkpoint: HashCheckpoint = { v: CHECKPOINT_VERSION, size: o.size, offset, state: hasher.save() };
    lastStarted = offset;
    inFlight = o.checkpoints.set(o.key, checkpoint).then(() => void (lastSaved = checkpoint.offset));
  };
  const save = async () => {
    await inFlight;
    await o.checkpoints.set(o.key, { v: CHECKPOINT_VERSION, size: o.size, offset, state: hasher.save() });
    lastSaved = offset;
  };

  const source = o.chunks ? o.chunks(offset) : o.stream ? streamChunks(o.stream(offset)) : sliceChunks(o.read, offset, o.size, slice);
  let reported = offset;
  for await (let chunk of source) {
    while (chunk.length > 0) {
      if (o.signal?.aborted) {
        if (offset > lastSaved) await save();
        return { kind: "paused", offset, resumedAt, bytesRead }; // leaving the loop cancels the source
      }
      // Split at save points, so checkpoints sit exactly on multiples of the half interval.
      const boundary = (Math.floor(offset / step) + 1) * step;
      const piece = chunk.subarray(0, Math.min(chunk.length, boundary - offset, o.size - offset));
      if (piece.length === 0) throw new Error(`file is longer than its size ${o.size}`);
      hasher.update(piece);
      offset += piece.length;
      bytesRead += piece.length;
      chunk = chunk.subarray(piece.length);
      if (offset - lastStarted >= step && offset < o.size) await saveBehind();
    }
    // Streams deliver small chunks: report about every MiB, not every chunk.
    if (offset - reported >= MiB || offset === o.size) {
      reported = offset;
      o.onProgress?.(offset, bytesRead);
    }
    if (o.rate) await delayForRate(started, bytesRead, o.rate);
  }
  if (offset !== o.size) throw new Error(`short read at ${offset} of ${o.size} bytes`);
  await inFlight;
  const finalState = hasher.save();
  const digest = formatDigest(hasher.digest());
  // Keep the finished digest until the upload is done (a reload in between must not re-hash).
  await o.checkpoints.set(o.key, { v: CHECKPOINT_VERSION, size: o.size, offset, state: finalState, digest });
  return { kind: "done", digest, resumedAt, bytesRead };
}

/** A stream's chunks; leaving early cancels the stream so the file stops being read. */
async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/**
 * Slices of [from, size), the next one read while the current one is hashed: reading is I/O in
 * another process (the browser's, or the OS's) and hashing CPU here, so they overlap. One slice
 * ahead at most: memory stays ~2 slices.
 */
async function* sliceChunks(read: HashJobOptions["read"], from: number, size: number, slice: number): AsyncGenerator<Uint8Array> {
  const readAt = (at: number) => {
    const promise = read(at, Math.min(size, at + slice));
    promise.catch(() => undefined); // a read dropped on pause must not surface as unhandled
    return promise;
  };
  let ahead = from < size ? readAt(from) : undefined;
  for (let at = from; ahead; at += slice) {
    const bytes = await ahead;
    const end = Math.min(size, at + slice);
    ahead = end < size ? readAt(end) : undefined;
    if (bytes.length !== end - at) throw new Error(`short read at ${at}: ${bytes.length} of ${end - at} bytes`);
    yield bytes;
  }
}
