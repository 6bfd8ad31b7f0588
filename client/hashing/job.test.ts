import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { seededBytes } from "../../test/support/seeded.ts";
import { createSHA256 } from "hash-wasm";
import { createResumableSha256 } from "../../shared/sha256.ts";
import { CHECKPOINT_VERSION, checkCheckpoint, createMemoryCheckpointStore } from "./checkpoint.ts";
import { runHashJob } from "./job.ts";

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
    const r = await runHashJob({
      key: "k",
      size,
      read: source(bytes).read,
      checkpoints: createMemoryCheckpointStore(),
      checkpointInterval: 2 * MiB,
      sliceSize: MiB,
    });
    expect(r).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: undefined, bytesRead: size });
  });

  test("a paused job saves a checkpoint; a new job resumes from it and reads only the rest", async () => {
    const size = 10 * MiB + 17;
    const bytes = seeded(size);
    const checkpoints = createMemoryCheckpointStore();
    const controller = new AbortController();
    const first = await runHashJob({
      key: "k",
      size,
      read: source(bytes).read,
      checkpoints,
      checkpointInterval: 4 * MiB,
      sliceSize: MiB,
      signal: controller.signal,
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
        key: "k",
        size,
        checkpoints,
        checkpointInterval: 4 * MiB,
        sliceSize: MiB,
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

  test("a checkpoint of another version or size, or whose state does not load or is at another offset, is discarded: hashing starts at 0", async () => {
    const size = 3 * MiB;
    const bytes = seeded(size);
    const good = createMemoryCheckpointStore();
    const ctrl = new AbortController();
    await runHashJob({ key: "k", size, read: source(bytes).read, checkpoints: good, sliceSize: MiB, signal: ctrl.signal, onProgress: () => ctrl.abort() });
    const saved = good.entries.get("k");
    if (!saved) throw new Error("no checkpoint");
    expect(saved.offset).toBe(MiB);
    const patched = (i: number, value: number) => Uint8Array.from(saved.state, (b, j) => (j === i ? value : b));
    // A state after 5 bytes: loads, but is not the state at the checkpoint's offset.
    const elsewhere = await createResumableSha256();
    elsewhere.update(bytes.subarray(0, 5));
    const variants = [
      { ...saved, v: CHECKPOINT_VERSION + 1 },
      { ...saved, size: size + 1 },
      { ...saved, state: patched(0, 0) }, // no "S256" magic
      { ...saved, state: patched(4, 2) }, // a format version this build does not read
      { ...saved, state: saved.state.subarray(0, 40) },
      { ...saved, state: elsewhere.save() },
      { ...saved, offset: MiB + 64 }, // the state's byte count says MiB
      { ...saved, state: Uint8Array.from([0, 0, 0, 0, ...new Uint8Array(112)]) }, // another hash-wasm build's own save()
      { ...saved, state: "not bytes" },
      "garbage",
    ];
    for (const bad of variants) {
      const store = createMemoryCheckpointStore();
      store.entries.set("k", bad as never);
      expect(checkCheckpoint(bad, size)).toBeUndefined();
      const starts: Array<number | undefined> = [];
      const r = await runHashJob({ key: "k", size, read: source(bytes).read, checkpoints: store, sliceSize: MiB, onStart: (at) => starts.push(at) });
      expect(r).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: undefined, bytesRead: size });
      expect(starts).toEqual([undefined]);
      // The bad checkpoint is gone: the finished one replaced it.
      expect(store.entries.get("k")?.digest).toBe(nodeDigest(bytes));
    }
  });

  test("a checkpoint in the format before version 1 (hash-wasm 4.13.0's own save()) resumes and is saved anew in version 1", async () => {
    const size = 3 * MiB + 9;
    const bytes = seeded(size, 11);
    const old = await createSHA256();
    old.update(bytes.subarray(0, MiB + 5));
    const checkpoints = createMemoryCheckpointStore();
    checkpoints.entries.set("k", { v: CHECKPOINT_VERSION, size, offset: MiB + 5, state: old.save() });
    const ctrl = new AbortController();
    const first = await runHashJob({
      key: "k",
      size,
      read: source(bytes).read,
      checkpoints,
      sliceSize: MiB,
      checkpointInterval: 4 * MiB,
      signal: ctrl.signal,
      onProgress: (offset) => offset >= 2 * MiB && ctrl.abort(),
    });
    expect(first).toMatchObject({ kind: "paused", resumedAt: MiB + 5 });
    const state = checkpoints.entries.get("k")?.state ?? new Uint8Array();
    expect(new TextDecoder().decode(state.subarray(0, 4))).toBe("S256");
    const second = await runHashJob({ key: "k", size, read: source(bytes).read, checkpoints, sliceSize: MiB });
    expect(second).toMatchObject({ kind: "done", digest: nodeDigest(bytes) });
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
    const r = await runHashJob({
      key: "k",
      size,
      read: () => Promise.reject(new Error("slices not used")),
      stream: streamFrom(bytes, 300_007, []),
      checkpoints: store,
      checkpointInterval: 2 * MiB,
    });
    expect(r).toMatchObject({ kind: "done", digest: nodeDigest(bytes), bytesRead: size });
    expect(saved).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((m) => m * MiB).concat(size));
  });

  test("a paused stream job resumes from its checkpoint, streaming only the rest", async () => {
    const size = 7 * MiB + 1;
    const bytes = seeded(size, 4);
    const checkpoints = createMemoryCheckpointStore();
    const controller = new AbortController();
    const first = await runHashJob({
      key: "k",
      size,
      read: () => Promise.reject(new Error("unused")),
      stream: streamFrom(bytes, 65_536, []),
      checkpoints,
      checkpointInterval: 2 * MiB,
      signal: controller.signal,
      onProgress: (offset) => offset >= 3 * MiB && controller.abort(),
    });
    expect(first.kind).toBe("paused");
    const pausedAt = checkpoints.entries.get("k")?.offset ?? 0;
    expect(pausedAt).toBeGreaterThanOrEqual(3 * MiB);
    const starts: number[] = [];
    const second = await runHashJob({
      key: "k",
      size,
      read: () => Promise.reject(new Error("unused")),
      stream: streamFrom(bytes, 65_536, starts),
      checkpoints,
      checkpointInterval: 2 * MiB,
    });
    expect(starts).toEqual([pausedAt]);
    expect(second).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: pausedAt, bytesRead: size - pausedAt });
  });
});
