import { describe, expect, test } from "vitest";
import { readAll } from "../../edge/storage/body.ts";
import { recordingDriver, type RecordedOp } from "../../edge/storage/testing.ts";
import { blobDataPath, uploadDataPath, uploadHashStatePath, uploadHashStatesPrefix, uploadPrefix } from "../../edge/registry/paths.ts";
import {
  BodyTooLargeError,
  ChecksumMismatchError,
  HashStateUnavailableError,
  UploadUnknownError,
  createUploadWriter,
  resumeUploadWriter,
} from "../../edge/writer/index.ts";
import { MiB, PART, chunked, keysUnder, newId, newNamespace, r2, sameBytes, seeded, sha256Of, testOptions } from "./writer-support.ts";

/** A stream that delivers `bytes` and then fails, like a request body cut off by a dropped connection. */
function cutOff(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const inner = chunked(bytes, 256 * 1024).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await inner.read();
      if (next.done) controller.error(new Error("connection reset"));
      else controller.enqueue(next.value);
    },
  });
}

async function blobBytes(digest: `sha256:${string}`): Promise<Uint8Array> {
  return readAll((await r2().get(blobDataPath(digest))).body);
}

describe("upload writer on R2: resuming from storage", () => {
  test("a writer re-created from storage continues from the saved offset and hasher state without re-reading earlier bytes", async () => {
    const data = seeded(2 * PART + 777, 11);
    const digest = await sha256Of(data);
    const namespace = newNamespace("resume");
    const id = newId();
    const first = await createUploadWriter(r2(), { namespace, id, length: data.length }, testOptions());
    const firstCut = PART + 3 * MiB; // one full part committed, 3 MiB pending in the tail
    await first.write(chunked(data.subarray(0, firstCut), 64 * 1024));

    // As after a worker restart: nothing in memory, everything from storage.
    const ops: RecordedOp[] = [];
    const driver = recordingDriver(r2(), ops);
    const resumed = await resumeUploadWriter(driver, { namespace, id }, testOptions());
    expect([resumed.offset, resumed.length, resumed.startedAt]).toEqual([firstCut, data.length, first.startedAt]);
    // Only the record, the part etags, the pending tail (less than a part) and the state at that offset were read.
    const prefix = uploadPrefix(namespace, id);
    expect(ops.filter((o) => o.op === "get").map((o) => o.key.slice(prefix.length))).toEqual([
      "info",
      "parts/0",
      `tail/${firstCut}`,
      `hashstates/sha256/${firstCut}`,
    ]);

    await resumed.write(data.subarray(firstCut));
    const done = await resumed.finish();
    expect(done.digest).toBe(digest);
    expect(sameBytes(await blobBytes(digest), data)).toBe(true);
    // No read of the upload's data or of the blob: the digest came from the resumed hasher state.
    const dataReads = ops.filter((o) => o.op === "get" && (o.key === uploadDataPath(namespace, id) || o.key.startsWith("docker/registry/v2/blobs/")));
    // The streamed copy (no server-side copy on R2) reads the data once, in part-sized ranges, after validation.
    expect(dataReads.every((o) => o.bytes !== undefined && o.bytes > 0 && o.bytes <= PART)).toBe(true);
    expect(dataReads.length).toBe(3);
  });

  test("with the digest declared, a resumed writer finishes with no read of any data at all", async () => {
    const data = seeded(PART + 123, 12);
    const digest = await sha256Of(data);
    const namespace = newNamespace("resume-declared");
    const id = newId();
    const first = await createUploadWriter(r2(), { namespace, id, length: data.length, declaredDigest: digest }, testOptions());
    await first.write(data.subarray(0, PART + 100));
    const ops: RecordedOp[] = [];
    const resumed = await resumeUploadWriter(recordingDriver(r2(), ops), { namespace, id }, testOptions());
    await resumed.write(data.subarray(PART + 100));
    await resumed.finish();
    const prefix = uploadPrefix(namespace, id);
    expect(ops.filter((o) => o.op === "get").map((o) => o.key.slice(prefix.length))).toEqual([
      "info",
      "parts/0",
      `tail/${PART + 100}`,
      `hashstates/sha256/${PART + 100}`,
    ]);
    expect(sameBytes(await blobBytes(digest), data)).toBe(true);
  });

  test("a body cut off mid-way keeps its complete parts and the partial tail; the upload resumes from there", async () => {
    const data = seeded(3 * PART + 10, 13);
    const namespace = newNamespace("cut");
    const id = newId();
    const writer = await createUploadWriter(r2(), { namespace, id, length: data.length }, testOptions());
    const received = 2 * PART + 2 * MiB;
    await expect(writer.write(cutOff(data.subarray(0, received)))).rejects.toThrow("connection reset");
    expect(writer.offset).toBe(received);
    const resumed = await resumeUploadWriter(r2(), { namespace, id }, testOptions());
    expect(resumed.offset).toBe(received);
    await resumed.write(data.subarray(received));
    const done = await resumed.finish();
    expect(done.digest).toBe(await sha256Of(data));
    expect(sameBytes(await blobBytes(done.digest), data)).toBe(true);
  });

  test("a transactional write whose checksum mismatches leaves the upload exactly as before", async () => {
    const data = seeded(2 * PART + 5, 14);
    const namespace = newNamespace("checksum");
    const id = newId();
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    await writer.write(data.subarray(0, MiB));
    const before = await keysUnder(driver, uploadPrefix(namespace, id));
    const body = data.subarray(MiB, MiB + PART + 1); // stores a part on the way
    const wrong = { algorithm: "sha256" as const, expected: new Uint8Array(32) };
    const err = await writer.write(chunked(body, 100_000), { checksum: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect(writer.offset).toBe(MiB);
    expect(await keysUnder(driver, uploadPrefix(namespace, id))).toEqual(before);
    expect((await resumeUploadWriter(driver, { namespace, id }, testOptions())).offset).toBe(MiB);

    // The same body with its right SHA-1 checksum goes through, then the rest.
    const sha1 = new Uint8Array(await crypto.subtle.digest("SHA-1", body));
    await writer.write(chunked(body, 100_000), { checksum: { algorithm: "sha1", expected: sha1 } });
    expect(writer.offset).toBe(MiB + PART + 1);
    await writer.write(data.subarray(MiB + PART + 1));
    const done = await writer.finish();
    expect(sameBytes(await blobBytes(done.digest), data)).toBe(true);
  });

  test("over maxBytes: a transactional write keeps nothing, a plain one keeps the bytes up to the limit", async () => {
    const data = seeded(PART + 1000, 15);
    const namespace = newNamespace("max");
    const id = newId();
    const writer = await createUploadWriter(r2(), { namespace, id, length: data.length }, testOptions());
    const err = await writer.write(chunked(data.subarray(0, 3000), 1000), { transactional: true, maxBytes: 2500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BodyTooLargeError);
    expect(err).toMatchObject({ limit: 2500, reason: "maxBytes" });
    expect(writer.offset).toBe(0);
    await expect(writer.write(chunked(data.subarray(0, 3000), 1000), { maxBytes: 2500 })).rejects.toBeInstanceOf(BodyTooLargeError);
    expect(writer.offset).toBe(2500);
    await expect(writer.write(data.subarray(2500, data.length + 1).slice(), {})).resolves.toEqual({ written: data.length - 2500, offset: data.length });
    await expect(writer.write(new Uint8Array(1))).rejects.toMatchObject({ name: "BodyTooLargeError", reason: "length", limit: 0 });
    const done = await writer.finish();
    expect(sameBytes(await blobBytes(done.digest), data)).toBe(true);
  });

  test("without a usable hasher state, finish re-reads and hashes the assembled data (distribution's fallback)", async () => {
    const data = seeded(PART + 4321, 16);
    const digest = await sha256Of(data);
    const namespace = newNamespace("rehash");
    const id = newId();
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    await writer.write(data);
    await driver.delete(...(await keysUnder(driver, uploadHashStatesPrefix(namespace, id))));
    const ops: RecordedOp[] = [];
    const resumed = await resumeUploadWriter(recordingDriver(driver, ops), { namespace, id }, testOptions());
    const done = await resumed.finish(digest);
    expect(done.digest).toBe(digest);
    expect(ops.filter((o) => o.op === "get" && o.key === uploadDataPath(namespace, id) && o.bytes === -1)).toHaveLength(1);
    expect(sameBytes(await blobBytes(digest), data)).toBe(true);
  });

  test("without a hasher state, an upload whose multipart targets the blob path refuses to finish rather than place unverified bytes", async () => {
    const data = seeded(PART + 1, 17);
    const digest = await sha256Of(data);
    const namespace = newNamespace("nostate");
    const id = newId();
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length, declaredDigest: digest }, testOptions());
    await writer.write(data);
    await driver.delete(uploadHashStatePath(namespace, id, data.length));
    const resumed = await resumeUploadWriter(driver, { namespace, id }, testOptions());
    await expect(resumed.finish()).rejects.toBeInstanceOf(HashStateUnavailableError);
    await expect(driver.stat(blobDataPath(digest))).rejects.toMatchObject({ name: "PathNotFoundError" });
    await resumed.cancel();
  });

  test("resuming an upload that is not in storage throws UploadUnknownError", async () => {
    await expect(resumeUploadWriter(r2(), { namespace: newNamespace("none"), id: newId() })).rejects.toBeInstanceOf(UploadUnknownError);
  });
});
