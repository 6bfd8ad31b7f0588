import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { seededBytes } from "../test/support/seeded.ts";
import { CHECKPOINT_VERSION, createMemoryCheckpointStore, runHashJob } from "./hash-job.ts";

const MiB = 1024 * 1024;

const seeded = seededBytes;

const nodeDigest = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function source(bytes: Uint8Array) {
  const reads: Array<[number, number]> = [];
  return { reads, read: async (s: number, e: number) => (reads.push([s, e]), bytes.slice(s, e)) };
}

describe("runHashJob", () => {
  test.each([0, 1, 5 * MiB - 1, 5 * MiB + 3])("digest of %i bytes equals node:crypto's", async (size) => {
    const bytes = seeded(size);
    const r = await runHashJob({ key: "k", size, read: source(bytes).read, checkpoints: createMemoryCheckpointStore(), checkpointInterval: 2 * MiB, sliceSize: MiB });
    expect(r).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: undefined, bytesRead: size });
  });

  test("a paused job saves a checkpoint; a new job resumes from it and reads only the rest", async () => {
    const size = 10 * MiB + 17;
    const bytes = seeded(size);
    const checkpoints = createMemoryCheckpointStore();
    const controller = new AbortController();
    const first = await runHashJob({
      key: "k", size, read: source(bytes).read, checkpoints, checkpointInterval: 4 * MiB, sliceSize: MiB, signal: controller.signal,
      onProgress: (offset) => offset >= 3 * MiB && controller.abort(),
    });
    expect(first).toMatchObject({ kind: "paused", offset: 3 * MiB });
    expect(checkpoints.entries.get("k")?.offset).toBe(3 * MiB);
    const src = source(bytes);
    const second = await runHashJob({ key: "k", size, read: src.read, checkpoints, checkpointInterval: 4 * MiB, sliceSize: MiB });
    expect(second).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: 3 * MiB, bytesRead: size - 3 * MiB });
    expect(src.reads[0]?.[0]).toBe(3 * MiB);
  });

  test("a job that dies (no pause) loses at most one checkpoint interval", async () => {
    const size = 20 * MiB;
    const bytes = seeded(size);
    const checkpoints = createMemoryCheckpointStore();
    let hashed = 0;
    // Simulate a crash: the read after 13 MiB throws, as a killed tab would simply stop.
    await expect(
      runHashJob({
        key: "k", size, checkpoints, checkpointInterval: 4 * MiB, sliceSize: MiB,
        read: async (s, e) => {
          if (s >= 13 * MiB) throw new Error("killed");
          hashed = e;
          return bytes.slice(s, e);
        },
      }),
    ).rejects.toThrow("killed");
    const saved = checkpoints.entries.get("k")?.offset ?? 0;
    expect(hashed - saved).toBeLessThanOrEqual(4 * MiB);
    const again = await runHashJob({ key: "k", size, read: source(bytes).read, checkpoints, checkpointInterval: 4 * MiB, sliceSize: MiB });
    expect(again).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: saved });
  });

  test("a checkpoint of another version, size or hash-wasm build is discarded: hashing starts at 0", async () => {
    const size = 3 * MiB;
    const bytes = seeded(size);
    const good = createMemoryCheckpointStore();
    const ctrl = new AbortController();
    await runHashJob({ key: "k", size, read: source(bytes).read, checkpoints: good, sliceSize: MiB, signal: ctrl.signal, onProgress: () => ctrl.abort() });
    const saved = good.entries.get("k");
    if (!saved) throw new Error("no checkpoint");
    const variants = [
      { ...saved, v: CHECKPOINT_VERSION + 1 },
      { ...saved, size: size + 1 },
      { ...saved, state: Uint8Array.from([0, 0, 0, 0, ...saved.state.subarray(4)]) }, // another binary id
      { ...saved, state: saved.state.subarray(0, 50) },
      "garbage",
    ];
    for (const bad of variants) {
      const store = createMemoryCheckpointStore();
      await store.set("k", bad as never).catch(() => store.entries.set("k", bad as never));
      const r = await runHashJob({ key: "k", size, read: source(bytes).read, checkpoints: store, sliceSize: MiB });
      expect(r).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: undefined, bytesRead: size });
    }
  });

  test("a finished hash is remembered: the next run reads nothing", async () => {
    const bytes = seeded(MiB + 5);
    const checkpoints = createMemoryCheckpointStore();
    await runHashJob({ key: "k", size: bytes.length, read: source(bytes).read, checkpoints });
    const src = source(bytes);
    const r = await runHashJob({ key: "k", size: bytes.length, read: src.read, checkpoints });
    expect(r).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: bytes.length, bytesRead: 0 });
    expect(src.reads).toEqual([]);
  });
});

/** A stream of `bytes` from `start`, in chunks of `chunk` bytes (straddling checkpoint boundaries). */
function streamFrom(bytes: Uint8Array, chunk: number, starts: number[]) {
  return (start: number) => {
    starts.push(start);
    let at = start;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      },
    });
  };
}

describe("runHashJob over a stream (the browser's Blob.stream())", () => {
  test("digest equals node:crypto's, and checkpoints land exactly on half-interval boundaries", async () => {
    const size = 9 * MiB + 5;
    const bytes = seeded(size, 3);
    const checkpoints = createMemoryCheckpointStore();
    const saved: number[] = [];
    const store = { ...checkpoints, set: async (k: string, c: Parameters<typeof checkpoints.set>[1]) => (saved.push(c.offset), checkpoints.set(k, c)) };
    const r = await runHashJob({ key: "k", size, read: () => Promise.reject(new Error("slices not used")), stream: streamFrom(bytes, 300_007, []), checkpoints: store, checkpointInterval: 2 * MiB });
    expect(r).toMatchObject({ kind: "done", digest: nodeDigest(bytes), bytesRead: size });
    expect(saved).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((m) => m * MiB).concat(size));
  });

  test("a paused stream job resumes from its checkpoint, streaming only the rest", async () => {
    const size = 7 * MiB + 1;
    const bytes = seeded(size, 4);
    const checkpoints = createMemoryCheckpointStore();
    const controller = new AbortController();
    const first = await runHashJob({
      key: "k", size, read: () => Promise.reject(new Error("unused")), stream: streamFrom(bytes, 65_536, []), checkpoints, checkpointInterval: 2 * MiB, signal: controller.signal,
      onProgress: (offset) => offset >= 3 * MiB && controller.abort(),
    });
    expect(first.kind).toBe("paused");
    const pausedAt = checkpoints.entries.get("k")?.offset ?? 0;
    expect(pausedAt).toBeGreaterThanOrEqual(3 * MiB);
    const starts: number[] = [];
    const second = await runHashJob({ key: "k", size, read: () => Promise.reject(new Error("unused")), stream: streamFrom(bytes, 65_536, starts), checkpoints, checkpointInterval: 2 * MiB });
    expect(starts).toEqual([pausedAt]);
    expect(second).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: pausedAt, bytesRead: size - pausedAt });
  });
});
