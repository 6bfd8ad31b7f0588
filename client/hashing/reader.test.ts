import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { seededBytes } from "../../test/support/seeded.ts";
import { portChunks, serveFile } from "./reader.ts";
import { createMemoryCheckpointStore } from "./checkpoint.ts";
import { runHashJob } from "./job.ts";

const MiB = 1024 * 1024;
const nodeDigest = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** The hasher's end of a reader serving `file` (both ends in this thread; the browser splits them). */
function reader(file: Blob, bufferSize: number, buffers: number) {
  return (start: number) => {
    const { port1, port2 } = new MessageChannel();
    serveFile(file, port2);
    return portChunks(port1, start, bufferSize, buffers);
  };
}

/** A Blob whose stream is not a byte stream (no BYOB reader), in 100,003-byte chunks. */
function plainStreamBlob(bytes: Uint8Array): Blob {
  return {
    size: bytes.length,
    slice: (start = 0) => ({
      stream: () => {
        let at = start;
        return new ReadableStream<Uint8Array>({
          pull(c) {
            if (at >= bytes.length) return c.close();
            c.enqueue(bytes.slice(at, at + 100_003));
            at += 100_003;
          },
        });
      },
    }),
  } as unknown as Blob;
}

describe("file reader over a MessagePort", () => {
  test.each([
    ["a Blob (byte stream, BYOB)", (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>])],
    ["a plain stream (copied)", plainStreamBlob],
  ])("delivers %s from an offset in full buffers, ending with a short one", async (_, make) => {
    const bytes = seededBytes(5 * MiB + 3, 7);
    const lengths: number[] = [];
    const got: Uint8Array[] = [];
    for await (const chunk of reader(make(bytes), MiB, 2)(MiB + 1)) {
      lengths.push(chunk.length);
      got.push(chunk.slice());
    }
    expect(lengths).toEqual([MiB, MiB, MiB, MiB, 2]);
    expect(Buffer.concat(got).equals(Buffer.from(bytes.subarray(MiB + 1)))).toBe(true);
  });

  test("hashing over it: same digest, checkpoints every half interval, and a paused job resumes there", async () => {
    const size = 19 * MiB + 11;
    const bytes = seededBytes(size, 8);
    const file = new Blob([bytes as Uint8Array<ArrayBuffer>]);
    const checkpoints = createMemoryCheckpointStore();
    const saved: number[] = [];
    const store = { ...checkpoints, set: async (k: string, c: Parameters<typeof checkpoints.set>[1]) => (saved.push(c.offset), checkpoints.set(k, c)) };
    const controller = new AbortController();
    const unused = () => Promise.reject(new Error("unused"));
    const first = await runHashJob({
      key: "k",
      size,
      read: unused,
      chunks: reader(file, 4 * MiB, 3),
      checkpoints: store,
      checkpointInterval: 4 * MiB,
      signal: controller.signal,
      onProgress: (offset) => offset >= 11 * MiB && controller.abort(),
    });
    expect(first).toMatchObject({ kind: "paused", offset: 12 * MiB });
    // Every 2 MiB (half the 4 MiB interval), up to where it paused.
    expect(saved).toEqual([2, 4, 6, 8, 10, 12].map((m) => m * MiB));
    const second = await runHashJob({ key: "k", size, read: unused, chunks: reader(file, 4 * MiB, 3), checkpoints: store, checkpointInterval: 4 * MiB });
    expect(second).toMatchObject({ kind: "done", digest: nodeDigest(bytes), resumedAt: 12 * MiB, bytesRead: size - 12 * MiB });
    const gaps = saved.slice(1).map((o, i) => o - (saved[i] ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * MiB);
  });
});
