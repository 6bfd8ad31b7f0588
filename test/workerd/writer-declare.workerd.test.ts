import { describe, expect, test } from "vitest";
import type { Sha256Digest } from "../../shared/digest.ts";
import { readAll } from "../../edge/storage/body.ts";
import type { StorageDriver } from "../../edge/storage/driver.ts";
import { recordingDriver, type RecordedOp } from "../../edge/storage/testing.ts";
import { blobDataPath, uploadDataPath, uploadPrefix } from "../../edge/registry/paths.ts";
import { DigestConflictError, DigestMismatchError, WriterClosedError, createUploadWriter, resumeUploadWriter } from "../../edge/writer/index.ts";
import { PART, keysUnder, newId, newNamespace, r2, sameBytes, seeded, sha256Of, testOptions } from "./writer-support.ts";

const WRONG: Sha256Digest = `sha256:${"cd".repeat(32)}`;

async function exists(driver: StorageDriver, key: string): Promise<boolean> {
  return driver.stat(key).then(
    () => true,
    () => false,
  );
}

/** Every byte read back from the store (ranged or whole GETs of upload data). */
function bytesRead(ops: RecordedOp[]): number {
  return ops.filter((o) => o.op === "get" && o.key.endsWith("/data")).reduce((sum, o) => sum + (o.bytes ?? 0), 0);
}

describe("upload writer on R2: a digest declared mid-upload", () => {
  test("moves the parts stored so far to the blob path once; later parts go there directly and the finish copies nothing", async () => {
    const data = seeded(4 * PART + 123, 41);
    const digest = await sha256Of(data);
    const namespace = newNamespace("declare-mid");
    const id = newId();
    const ops: RecordedOp[] = [];
    const driver = recordingDriver(r2(), ops);
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    await writer.write(data.subarray(0, 2 * PART + 77));

    ops.length = 0;
    await writer.declareDigest(digest);
    // The two committed parts were read back once each and re-stored under the blob path's upload.
    expect(bytesRead(ops)).toBe(2 * PART);
    expect(ops.filter((o) => o.op === "uploadPart").map((o) => [o.key, o.bytes])).toEqual([
      [blobDataPath(digest), PART],
      [blobDataPath(digest), PART],
    ]);
    expect(writer.declaredDigest).toBe(digest);
    // Nothing is visible at the blob path before verification, and the assembled copy is gone.
    expect(await exists(driver, blobDataPath(digest))).toBe(false);
    expect(await exists(driver, uploadDataPath(namespace, id))).toBe(false);

    await writer.write(data.subarray(2 * PART + 77));
    ops.length = 0;
    const done = await writer.finish();
    expect(done.digest).toBe(digest);
    expect(bytesRead(ops)).toBe(0);
    // Only the 123-byte tail was stored at finish, as the last part: no copy, no re-read.
    expect(ops.filter((o) => o.op === "uploadPart" || o.op === "copy").map((o) => o.bytes)).toEqual([123]);
    expect(sameBytes(await readAll((await driver.get(blobDataPath(digest))).body), data)).toBe(true);
    expect(await keysUnder(driver, uploadPrefix(namespace, id))).toEqual([]);
  });

  test("before any full part: the upload's empty multipart upload is dropped, nothing is read back", async () => {
    const data = seeded(2 * PART + 5, 42);
    const digest = await sha256Of(data);
    const namespace = newNamespace("declare-early");
    const id = newId();
    const ops: RecordedOp[] = [];
    const driver = recordingDriver(r2(), ops);
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    await writer.write(data.subarray(0, 1000));
    ops.length = 0;
    await writer.declareDigest(digest);
    expect(bytesRead(ops)).toBe(0);
    expect(ops.filter((o) => o.op === "abort").map((o) => o.key)).toEqual([uploadDataPath(namespace, id)]);
    await writer.write(data.subarray(1000));
    const done = await writer.finish();
    expect(sameBytes(await readAll((await driver.get(done.blobKey)).body), data)).toBe(true);
  });

  test("a wrong digest declared mid-upload fails the finish: nothing reaches a blob path, the upload is removed", async () => {
    const data = seeded(3 * PART + 1, 43);
    const actual = await sha256Of(data);
    const namespace = newNamespace("declare-wrong");
    const id = newId();
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    await writer.write(data.subarray(0, PART + 3));
    await writer.declareDigest(WRONG);
    await writer.write(data.subarray(PART + 3));
    const err = await writer.finish().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err).toMatchObject({ expected: WRONG, actual });
    expect(await exists(driver, blobDataPath(WRONG))).toBe(false);
    expect(await exists(driver, blobDataPath(actual))).toBe(false);
    expect(await keysUnder(driver, uploadPrefix(namespace, id))).toEqual([]);
  });

  test("the same digest again changes nothing; a different one is refused with DigestConflictError", async () => {
    const data = seeded(2 * PART, 44);
    const digest = await sha256Of(data);
    const namespace = newNamespace("declare-twice");
    const ops: RecordedOp[] = [];
    const driver = recordingDriver(r2(), ops);
    const writer = await createUploadWriter(driver, { namespace, id: newId(), length: data.length }, testOptions());
    await writer.write(data.subarray(0, PART));
    await writer.declareDigest(digest);
    ops.length = 0;
    await writer.declareDigest(digest);
    expect(ops).toEqual([]);
    await expect(writer.declareDigest(WRONG)).rejects.toBeInstanceOf(DigestConflictError);
    await writer.write(data.subarray(PART));
    expect((await writer.finish()).digest).toBe(digest);
  });

  test("an upload that fits one part only records the digest; the finish checks it", async () => {
    const data = seeded(PART - 1, 45);
    const digest = await sha256Of(data);
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace: newNamespace("declare-small"), id: newId(), length: data.length }, testOptions());
    await writer.write(data.subarray(0, 10));
    await writer.declareDigest(WRONG);
    await writer.write(data.subarray(10));
    await expect(writer.finish()).rejects.toMatchObject({ name: "DigestMismatchError", expected: WRONG, actual: digest });
    expect(await exists(driver, blobDataPath(digest))).toBe(false);
  });

  for (const failing of [1, 2]) {
    test(`a move cut off at copied part ${failing} (store failure) closes the writer; the next writer from storage completes it and finishes`, async () => {
      const data = seeded(3 * PART + 9, 46 + failing);
      const digest = await sha256Of(data);
      const namespace = newNamespace(`declare-crash-${failing}`);
      const id = newId();
      const real = r2();
      let failNext = false;
      // uploadPart into the blob path's upload fails once at part `failing`: the source was
      // already assembled, so the resumed move must cope with an upload id that is gone.
      const flaky: StorageDriver = {
        ...real,
        resumeMultipart: (key, uploadId) => {
          const mp = real.resumeMultipart(key, uploadId);
          return {
            ...mp,
            uploadPart: (n, body) =>
              failNext && key === blobDataPath(digest) && n === failing
                ? ((failNext = false), Promise.reject(new Error("store down")))
                : mp.uploadPart(n, body),
          };
        },
      };
      const writer = await createUploadWriter(flaky, { namespace, id, length: data.length }, testOptions());
      await writer.write(data.subarray(0, 2 * PART + 1));
      failNext = true;
      await expect(writer.declareDigest(digest)).rejects.toThrow("store down");
      await expect(writer.write(data.subarray(2 * PART + 1))).rejects.toBeInstanceOf(WriterClosedError);

      const resumed = await resumeUploadWriter(flaky, { namespace, id }, testOptions());
      expect(resumed.offset).toBe(2 * PART + 1);
      expect(resumed.declaredDigest).toBe(digest);
      await resumed.write(data.subarray(2 * PART + 1));
      const done = await resumed.finish();
      expect(done.digest).toBe(digest);
      expect(sameBytes(await readAll((await real.get(blobDataPath(digest))).body), data)).toBe(true);
      expect(await keysUnder(real, uploadPrefix(namespace, id))).toEqual([]);
    });
  }
});
