import { describe, expect, test } from "vitest";
import { readAll } from "../storage/body.ts";
import { chunked, sameBytes, seeded } from "../storage/conformance.ts";
import { createMemoryDriver } from "../storage/memory.ts";
import { gatedDriver, recordingDriver, type RecordedOp } from "../storage/testing.ts";
import {
  blobDataPath,
  uploadDataPath,
  uploadHashStatePath,
  uploadInfoPath,
  uploadPartsPath,
  uploadPrefix,
  uploadStartedAtPath,
  uploadTailPath,
} from "../registry/paths.ts";
import { WriterClosedError, createUploadWriter, resumeUploadWriter } from "./index.ts";
import type { StorageDriver } from "../storage/driver.ts";
import { formatDigest } from "../../shared/digest.ts";
import { deferred, until } from "../../test/support/async.ts";
import { createResumableSha256 } from "../../shared/sha256.ts";

const PART = 5 * 1024 * 1024;
const ID = "f".repeat(64);

async function sha256(bytes: Uint8Array) {
  return formatDigest(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

// The workerd tests (test/workerd/writer-*.workerd.test.ts) cover the writer on R2; these run it
// in Node (hash-wasm as shipped) over the memory driver, including the server-side copy branch
// that the R2 binding lacks.
describe("upload writer in Node over the memory driver", () => {
  for (const copy of [true, false]) {
    test(`moves assembled data with ${copy ? "the store's server-side copy" : "a streamed, ranged copy"} and the bytes match`, async () => {
      const data = seeded(2 * PART + 99, 70);
      const ops: RecordedOp[] = [];
      const driver = recordingDriver(createMemoryDriver({ copy }), ops);
      const writer = await createUploadWriter(driver, { namespace: "node/test", id: ID, length: data.length }, { partSize: PART });
      for (const [from, to] of [
        [0, 1],
        [1, 3_000_000],
        [3_000_000, 8_000_000],
        [8_000_000, data.length],
      ] as const) {
        await writer.write(chunked(data.subarray(from, to), 100_000));
      }
      const resumed = await resumeUploadWriter(driver, { namespace: "node/test", id: ID }, { partSize: PART });
      const done = await resumed.finish();
      expect(done.digest).toBe(await sha256(data));
      expect(sameBytes(await readAll((await driver.get(blobDataPath(done.digest))).body), data)).toBe(true);
      expect(ops.some((o) => o.op === "copy")).toBe(copy);
      const rangedReads = ops.filter((o) => o.op === "get" && o.key === uploadDataPath("node/test", ID));
      expect(rangedReads.map((o) => o.bytes)).toEqual(copy ? [] : [PART, PART, 99]);
    });
  }

  test("a part the store refuses mid-body closes the writer; one resumed from storage continues from the last commit", async () => {
    const data = seeded(3 * PART + 5, 71);
    const memory = createMemoryDriver();
    let failAt = 2; // the second part of the body fails once
    const flaky: StorageDriver = {
      ...memory,
      createMultipart: async (key) => {
        const mp = await memory.createMultipart(key);
        return { ...mp, uploadPart: (n, b) => (n === failAt ? ((failAt = 0), Promise.reject(new Error("store down"))) : mp.uploadPart(n, b)) };
      },
      resumeMultipart: (key, id) => {
        const mp = memory.resumeMultipart(key, id);
        return { ...mp, uploadPart: (n, b) => (n === failAt ? ((failAt = 0), Promise.reject(new Error("store down"))) : mp.uploadPart(n, b)) };
      },
    };
    const writer = await createUploadWriter(flaky, { namespace: "node/flaky", id: ID, length: data.length }, { partSize: PART });
    await expect(writer.write(chunked(data, 1_000_000))).rejects.toThrow("store down");
    expect(writer.offset).toBe(PART);
    await expect(writer.write(new Uint8Array(1))).rejects.toBeInstanceOf(WriterClosedError);
    const resumed = await resumeUploadWriter(flaky, { namespace: "node/flaky", id: ID }, { partSize: PART });
    expect(resumed.offset).toBe(PART);
    await resumed.write(data.subarray(PART));
    const done = await resumed.finish();
    expect(done.digest).toBe(await sha256(data));
    expect(sameBytes(await readAll((await memory.get(done.blobKey)).body), data)).toBe(true);
  });

  describe("pipelined writes: a part is stored while the next one is received", () => {
    /** A chunked body that counts the bytes the writer pulled from it. */
    function counted(bytes: Uint8Array, size: number) {
      const seen = { bytes: 0 };
      let at = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          const chunk = bytes.slice(at, at + size);
          at += chunk.length;
          seen.bytes = at;
          controller.enqueue(chunk);
        },
      });
      return { stream, seen };
    }
    async function keysOf(driver: StorageDriver, ns: string): Promise<string[]> {
      return (await driver.list(uploadPrefix(ns, ID))).keys.sort();
    }
    async function stateAfter(bytes: Uint8Array): Promise<Uint8Array> {
      const h = await createResumableSha256();
      h.update(bytes);
      return h.save();
    }
    const CHUNK = 256 * 1024;

    test("while part 1 is being stored the body is read on through part 2, whose upload starts at once; each commit records the hasher state at its own offset", async () => {
      const ns = "node/overlap";
      const data = seeded(3 * PART + 7, 72);
      const memory = createMemoryDriver();
      const gates = new Map([1, 2].map((n) => [n, deferred()]));
      const { driver, calls } = gatedDriver(memory, (n) => gates.get(n)?.promise ?? Promise.resolve());
      const writer = await createUploadWriter(driver, { namespace: ns, id: ID, length: data.length }, { partSize: PART });
      const { stream, seen } = counted(data, CHUNK);
      const writing = writer.write(stream);

      await until(() => seen.bytes >= 2 * PART);
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Part 1 is still in flight: part 2 has been received (and hashed) and is being sent too
      // (two parts in flight, one per buffer), and the body is not read further than about two
      // parts: both buffers are taken.
      expect(calls).toEqual([1, 2]);
      expect(seen.bytes).toBeLessThanOrEqual(2 * PART + 2 * CHUNK);
      expect(writer.offset).toBe(0);

      gates.get(1)?.resolve();
      await until(() => writer.offset === PART);
      // Committed at PART while the hasher was already past it (part 2 hashed): the state saved is
      // the one at PART, and the previous commit's keys are gone.
      expect(seen.bytes).toBeGreaterThanOrEqual(2 * PART);
      const saved = await readAll((await memory.get(uploadHashStatePath(ns, ID, PART))).body);
      expect(sameBytes(saved, await stateAfter(data.subarray(0, PART)))).toBe(true);

      gates.get(2)?.resolve();
      const result = await writing;
      expect(result).toEqual({ written: data.length, offset: data.length });
      expect(calls).toEqual([1, 2, 3]);
      // Every superseded tail and hasher state was deleted before write returned.
      expect(await keysOf(memory, ns)).toEqual(
        [
          uploadInfoPath(ns, ID),
          uploadStartedAtPath(ns, ID),
          uploadPartsPath(ns, ID, 0),
          uploadHashStatePath(ns, ID, data.length),
          uploadTailPath(ns, ID, data.length),
        ].sort(),
      );
      const done = await writer.finish();
      expect(done.digest).toBe(await sha256(data));
      expect(sameBytes(await readAll((await memory.get(done.blobKey)).body), data)).toBe(true);
    });

    test("parts whose uploads are both done when the first one's commit starts are committed together, once, at the later offset", async () => {
      const ns = "node/coalesce";
      const data = seeded(2 * PART + 5, 74);
      const part1 = deferred();
      const ops: RecordedOp[] = [];
      const { driver, calls } = gatedDriver(recordingDriver(createMemoryDriver(), ops), (n) => (n === 1 ? part1.promise : Promise.resolve()));
      const writer = await createUploadWriter(driver, { namespace: ns, id: ID, length: data.length }, { partSize: PART });
      const { stream, seen } = counted(data, CHUNK);
      const writing = writer.write(stream);

      // Part 2 is stored while part 1 is still held; then part 1 lands.
      await until(() => seen.bytes === data.length && calls.includes(2));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(writer.offset).toBe(0);
      part1.resolve();
      expect(await writing).toEqual({ written: data.length, offset: data.length });

      // One commit for both parts: no hasher state was ever written at the first part's end, and
      // the record was rewritten twice (both parts, then the tail), not three times.
      const puts = ops.filter((o) => o.op === "put").map((o) => o.key);
      expect(puts).not.toContain(uploadHashStatePath(ns, ID, PART));
      expect(puts).toContain(uploadHashStatePath(ns, ID, 2 * PART));
      expect(puts.filter((k) => k === uploadInfoPath(ns, ID))).toHaveLength(3); // creation + 2 commits
      const saved = await readAll((await driver.get(uploadHashStatePath(ns, ID, data.length))).body);
      expect(sameBytes(saved, await stateAfter(data))).toBe(true);
      const done = await writer.finish();
      expect(done.digest).toBe(await sha256(data));
      expect(sameBytes(await readAll((await driver.get(done.blobKey)).body), data)).toBe(true);
    });

    test("once the body is read, a part stored before the next one is not committed on its own: the last part's commit takes it along", async () => {
      const ns = "node/at-end";
      // Exactly two parts, as a 16 MiB PATCH of 8 MiB parts: nothing after part 2 waits for a buffer.
      const data = seeded(2 * PART, 75);
      const gates = new Map([1, 2].map((n) => [n, deferred()]));
      const ops: RecordedOp[] = [];
      const { driver, calls } = gatedDriver(recordingDriver(createMemoryDriver(), ops), (n) => gates.get(n)?.promise ?? Promise.resolve());
      const writer = await createUploadWriter(driver, { namespace: ns, id: ID, length: data.length }, { partSize: PART });
      const { stream, seen } = counted(data, CHUNK);
      const writing = writer.write(stream);

      await until(() => seen.bytes === data.length && calls.includes(2));
      await new Promise((resolve) => setTimeout(resolve, 20));
      gates.get(1)?.resolve(); // part 1 is stored while part 2 is still on its way
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(writer.offset).toBe(0);
      expect(ops.filter((o) => o.op === "put").map((o) => o.key)).not.toContain(uploadHashStatePath(ns, ID, PART));
      gates.get(2)?.resolve();
      expect(await writing).toEqual({ written: data.length, offset: data.length });
      expect(ops.filter((o) => o.op === "put" && o.key === uploadInfoPath(ns, ID))).toHaveLength(2); // creation + parts 1-2
      const done = await writer.finish();
      expect(done.digest).toBe(await sha256(data));
    });

    test("a part upload failing while the next part is received leaves the offset at the last stored part; a resumed writer finishes", async () => {
      const ns = "node/inflight";
      const data = seeded(3 * PART + 5, 73);
      const memory = createMemoryDriver();
      const part2 = deferred();
      let failing = true;
      const { driver, calls } = gatedDriver(memory, (n) => (n === 2 && failing ? part2.promise : Promise.resolve()));
      const writer = await createUploadWriter(driver, { namespace: ns, id: ID, length: data.length }, { partSize: PART });
      const { stream, seen } = counted(data, CHUNK);
      const writing = writer.write(stream);
      const outcome = writing.then(
        () => "resolved",
        (err: unknown) => err,
      );

      // Part 2 fails only once part 3 is received and on its way too (part 1's buffer was free).
      await until(() => calls.length === 3);
      expect(calls).toEqual([1, 2, 3]);
      expect(seen.bytes).toBeGreaterThanOrEqual(3 * PART);
      expect(writer.offset).toBe(PART);
      failing = false;
      part2.reject(new Error("store down"));
      const err = await outcome;
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe("store down");

      // Nothing after the stored part is committed (neither part 2 nor the bytes after it).
      expect(writer.offset).toBe(PART);
      await expect(writer.write(new Uint8Array(1))).rejects.toBeInstanceOf(WriterClosedError);
      expect(await keysOf(memory, ns)).toEqual(
        [uploadInfoPath(ns, ID), uploadStartedAtPath(ns, ID), uploadPartsPath(ns, ID, 0), uploadHashStatePath(ns, ID, PART)].sort(),
      );

      const resumed = await resumeUploadWriter(driver, { namespace: ns, id: ID }, { partSize: PART });
      expect(resumed.offset).toBe(PART);
      await resumed.write(chunked(data.subarray(PART), CHUNK));
      expect(resumed.offset).toBe(data.length);
      const done = await resumed.finish();
      expect(done.digest).toBe(await sha256(data));
      expect(sameBytes(await readAll((await memory.get(done.blobKey)).body), data)).toBe(true);
    });
  });
});

describe("part buffers reused from one write to the next", () => {
  test("a store that reads a part's bytes only just before it answers still gets the right bytes, over many writes", async () => {
    // Each store call takes its copy of the bytes at the last moment (as a network store reading
    // the body until it answers): a buffer handed back to the pool too early would be refilled by
    // the next write first, and the blob would not match its digest.
    const data = seeded(4 * PART + 12_345, 73);
    const memory = createMemoryDriver();
    const late = <T>(bytes: Uint8Array, store: (copy: Uint8Array) => Promise<T>) => new Promise((r) => setTimeout(r, 5)).then(() => store(bytes.slice()));
    const driver: StorageDriver = {
      ...memory,
      put: (key, body, opts) => (body instanceof Uint8Array ? late(body, (copy) => memory.put(key, copy, opts)) : memory.put(key, body, opts)),
      createMultipart: async (key) => {
        const mp = await memory.createMultipart(key);
        return { ...mp, uploadPart: (n, b) => late(b as Uint8Array, (copy) => mp.uploadPart(n, copy)) };
      },
      resumeMultipart: (key, id) => {
        const mp = memory.resumeMultipart(key, id);
        return { ...mp, uploadPart: (n, b) => late(b as Uint8Array, (copy) => mp.uploadPart(n, copy)) };
      },
    };
    const writer = await createUploadWriter(driver, { namespace: "node/pool", id: ID, length: data.length }, { partSize: PART });
    // Writes that end mid-part (a tail to commit) and span parts, like PATCHes of odd sizes.
    for (let at = 0; at < data.length; ) {
      const end = Math.min(data.length, at + 3_000_001);
      await writer.write(chunked(data.subarray(at, end), 250_000));
      at = end;
    }
    const done = await writer.finish();
    expect(done.digest).toBe(await sha256(data));
    expect(sameBytes(await readAll((await memory.get(done.blobKey)).body), data)).toBe(true);
  });

  test("consecutive writes of one writer use the same part buffers instead of allocating new ones", async () => {
    const data = seeded(3 * PART, 74);
    const memory = createMemoryDriver();
    const seen = new Set<ArrayBufferLike>();
    const driver: StorageDriver = {
      ...memory,
      createMultipart: async (key) => {
        const mp = await memory.createMultipart(key);
        return { ...mp, uploadPart: (n, b) => (seen.add((b as Uint8Array).buffer), mp.uploadPart(n, b)) };
      },
      resumeMultipart: (key, id) => {
        const mp = memory.resumeMultipart(key, id);
        return { ...mp, uploadPart: (n, b) => (seen.add((b as Uint8Array).buffer), mp.uploadPart(n, b)) };
      },
    };
    const writer = await createUploadWriter(driver, { namespace: "node/pool", id: ID, length: data.length }, { partSize: PART });
    for (let part = 0; part < 3; part++) await writer.write(chunked(data.subarray(part * PART, (part + 1) * PART), 1_000_000));
    // Three parts through three writes, one part buffer: the one the first write allocated.
    expect(seen.size).toBe(1);
    const done = await writer.finish();
    expect(sameBytes(await readAll((await memory.get(done.blobKey)).body), data)).toBe(true);
  });
});
