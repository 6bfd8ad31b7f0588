import { describe, expect, test } from "vitest";
import type { StorageDriver } from "../../edge/storage/driver.ts";
import { readAll } from "../../edge/storage/body.ts";
import { gatedDriver } from "../../edge/storage/testing.ts";
import { deferred, until } from "../support/async.ts";
import { blobDataPath, uploadHashStatePath, uploadInfoPath, uploadPartsPath, uploadPrefix, uploadStartedAtPath } from "../../edge/registry/paths.ts";
import { WriterClosedError, createUploadWriter, resumeUploadWriter } from "../../edge/writer/index.ts";
import { PART, chunked, keysUnder, newId, newNamespace, r2, sameBytes, seeded, sha256Of, testOptions } from "./writer-support.ts";

/** A chunked body that records how far the writer has read it. */
function counted(bytes: Uint8Array, size: number) {
  const seen = { bytes: 0 };
  const inner = chunked(bytes, size).getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await inner.read();
      if (next.done) return controller.close();
      seen.bytes += next.value.length;
      controller.enqueue(next.value);
    },
  });
  return { stream, seen };
}

const CHUNK = 256 * 1024;

/** `driver` with its puts of `key` held until `gate` settles (a rejected gate fails them). */
function heldPut(driver: StorageDriver, key: string, gate: Promise<void>): StorageDriver & { parts: number[] } {
  const parts: number[] = [];
  return {
    ...driver,
    parts,
    put: async (k, body, o) => {
      if (k === key) await gate;
      return driver.put(k, body, o);
    },
    resumeMultipart: (k, uploadId) => {
      const mp = driver.resumeMultipart(k, uploadId);
      return { ...mp, uploadPart: (n, body) => (parts.push(n), mp.uploadPart(n, body)) };
    },
  };
}

describe("upload writer on R2: the body is received while the previous part is stored", () => {
  test("part 2 is read, hashed and sent while part 1 is in flight; the result is byte-identical", async () => {
    const namespace = newNamespace("overlap");
    const id = newId();
    const data = seeded(3 * PART + 11, 31);
    const part1 = deferred();
    const { driver, calls } = gatedDriver(r2(), (n) => (n === 1 ? part1.promise : Promise.resolve()));
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    const { stream, seen } = counted(data, CHUNK);
    const writing = writer.write(stream);

    await until(() => seen.bytes >= 2 * PART, 5);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toEqual([1, 2]); // two parts in flight, one per buffer
    expect(seen.bytes).toBeLessThanOrEqual(2 * PART + 2 * CHUNK); // and no third buffer

    expect(writer.offset).toBe(0);

    part1.resolve();
    expect(await writing).toEqual({ written: data.length, offset: data.length });
    const done = await writer.finish();
    expect(done.digest).toBe(await sha256Of(data));
    expect(sameBytes(await readAll((await r2().get(blobDataPath(done.digest))).body), data)).toBe(true);
    expect(await keysUnder(r2(), uploadPrefix(namespace, id))).toEqual([]);
  });

  test("a part upload failing while the next part arrives: committed offset stays at the last stored part, a resumed writer finishes", async () => {
    const namespace = newNamespace("inflight");
    const id = newId();
    const data = seeded(3 * PART + 3, 32);
    const part2 = deferred();
    let failing = true;
    const { driver, calls } = gatedDriver(r2(), (n) => (n === 2 && failing ? part2.promise : Promise.resolve()));
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    const { stream, seen } = counted(data, CHUNK);
    const outcome = writer.write(stream).then(
      () => undefined,
      (err: unknown) => err,
    );

    // Part 2 fails once part 3 is received and on its way too (part 1's buffer was free).
    await until(() => calls.length === 3, 5);
    expect(calls).toEqual([1, 2, 3]);
    expect(seen.bytes).toBeGreaterThanOrEqual(3 * PART);
    expect(writer.offset).toBe(PART);
    failing = false;
    part2.reject(new Error("store down"));
    expect(((await outcome) as Error).message).toBe("store down");

    expect(writer.offset).toBe(PART);
    await expect(writer.write(new Uint8Array(1))).rejects.toBeInstanceOf(WriterClosedError);
    expect((await keysUnder(r2(), uploadPrefix(namespace, id))).sort()).toEqual(
      [uploadInfoPath(namespace, id), uploadStartedAtPath(namespace, id), uploadPartsPath(namespace, id, 0), uploadHashStatePath(namespace, id, PART)].sort(),
    );

    const resumed = await resumeUploadWriter(r2(), { namespace, id }, testOptions());
    expect(resumed.offset).toBe(PART);
    await resumed.write(chunked(data.subarray(PART), CHUNK));
    const done = await resumed.finish();
    expect(done.digest).toBe(await sha256Of(data));
    expect(sameBytes(await readAll((await r2().get(blobDataPath(done.digest))).body), data)).toBe(true);
  });

  test("part 2 is uploaded while part 1's commit is still being written; part 2 is committed only after it", async () => {
    const namespace = newNamespace("commit-overlap");
    const id = newId();
    const data = seeded(3 * PART + 7, 33);
    const commit1 = deferred();
    const driver = heldPut(r2(), uploadHashStatePath(namespace, id, PART), commit1.promise);
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    const writing = writer.write(chunked(data, CHUNK));

    await until(() => driver.parts.includes(2), 5);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(driver.parts).toEqual([1, 2]); // part 3 waits: at most one commit behind the uploads
    expect(writer.offset).toBe(0);

    commit1.resolve();
    expect(await writing).toEqual({ written: data.length, offset: data.length });
    const done = await writer.finish();
    expect(done.digest).toBe(await sha256Of(data));
    expect(sameBytes(await readAll((await r2().get(blobDataPath(done.digest))).body), data)).toBe(true);
  });

  test("part 1's commit failing after part 2 was uploaded: nothing after it is committed, a resumed writer finishes", async () => {
    const namespace = newNamespace("commit-fails");
    const id = newId();
    const data = seeded(3 * PART + 5, 34);
    const commit1 = deferred();
    const driver = heldPut(r2(), uploadHashStatePath(namespace, id, PART), commit1.promise);
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    const outcome = writer.write(chunked(data, CHUNK)).then(
      () => undefined,
      (err: unknown) => err,
    );
    await until(() => driver.parts.includes(2), 5);
    commit1.reject(new Error("store down"));
    expect(((await outcome) as Error).message).toBe("store down");
    expect(writer.offset).toBe(0);

    const resumed = await resumeUploadWriter(r2(), { namespace, id }, testOptions());
    expect(resumed.offset).toBe(0);
    await resumed.write(chunked(data, CHUNK));
    const done = await resumed.finish();
    expect(done.digest).toBe(await sha256Of(data));
    expect(sameBytes(await readAll((await r2().get(blobDataPath(done.digest))).body), data)).toBe(true);
  });
});
