import { describe, expect, test } from "vitest";
import type { Sha256Digest } from "../../shared/digest.ts";
import { readAll } from "../../edge/storage/body.ts";
import { MultipartUnknownError } from "../../edge/storage/driver.ts";
import { lyingDriver, recordingDriver, type RecordedOp } from "../../edge/storage/testing.ts";
import { blobDataPath, blobsPrefix, layerLinkPath, uploadDataPath, uploadHashStatesPrefix, uploadPrefix } from "../../edge/registry/paths.ts";
import { isLinked, readLink } from "../../edge/registry/blobs.ts";
import { DigestMismatchError, UploadDataUnavailableError, createUploadWriter, resumeUploadWriter } from "../../edge/writer/index.ts";
import { MiB, PART, keysUnder, newId, newNamespace, r2, relative, sameBytes, seeded, sha256Of, testOptions } from "./writer-support.ts";

const WRONG: Sha256Digest = `sha256:${"ab".repeat(32)}`;

/** Blob keys for these digests: the bucket is shared by the file's tests, so only ours are checked. */
async function blobKeysOf(...digests: Sha256Digest[]): Promise<string[]> {
  const all = await keysUnder(r2(), blobsPrefix);
  return all.filter((k) => digests.some((d) => k === blobDataPath(d)));
}

describe("upload writer on R2: finish, verification, move, link, cancel", () => {
  test("a wrong declared digest fails with DigestMismatchError, nothing reaches a blob path, the upload is removed", async () => {
    const data = seeded(2 * PART + 9, 21);
    const actual = await sha256Of(data);
    const namespace = newNamespace("wrong-declared");
    const id = newId();
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length, declaredDigest: WRONG }, testOptions());
    await writer.write(data);
    const err = await writer.finish().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err).toMatchObject({ expected: WRONG, actual });
    expect(await blobKeysOf(WRONG, actual)).toEqual([]);
    expect(await keysUnder(driver, uploadPrefix(namespace, id))).toEqual([]);
    expect(await readLink(driver, namespace, WRONG)).toBeUndefined();
  });

  test("a wrong digest given at finish (none declared) fails the same way, after the data was assembled under the upload", async () => {
    const data = seeded(PART + 9, 22);
    const actual = await sha256Of(data);
    const namespace = newNamespace("wrong-finish");
    const id = newId();
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    await writer.write(data);
    await expect(writer.finish(WRONG)).rejects.toMatchObject({ name: "DigestMismatchError", expected: WRONG, actual });
    expect(await blobKeysOf(WRONG, actual)).toEqual([]);
    expect(await keysUnder(driver, uploadPrefix(namespace, id))).toEqual([]);
  });

  test("a small upload (tail only) with a wrong digest leaves nothing either", async () => {
    const data = seeded(1000, 23);
    const namespace = newNamespace("wrong-small");
    const id = newId();
    const writer = await createUploadWriter(r2(), { namespace, id, length: data.length }, testOptions());
    await writer.write(data);
    await expect(writer.finish(WRONG)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await blobKeysOf(WRONG, await sha256Of(data))).toEqual([]);
    expect(await keysUnder(r2(), uploadPrefix(namespace, id))).toEqual([]);
  });

  for (const k of [0, 1, 3]) {
    test(`a store answering "not found" for the first ${k} reads of the assembled data is retried (retries 3) and succeeds`, async () => {
      const data = seeded(PART + 50, 30 + k);
      const namespace = newNamespace(`lie-missing-${k}`);
      const id = newId();
      const liar = lyingDriver(r2(), { matches: (key) => key === uploadDataPath(namespace, id), times: k, mode: "missing" });
      const options = testOptions({ validateRetries: 3, retryDelayMs: 10 });
      const writer = await createUploadWriter(liar, { namespace, id, length: data.length }, options);
      await writer.write(data);
      const done = await writer.finish();
      expect(liar.lies()).toBe(k);
      expect(options.delays).toEqual([10, 20, 40].slice(0, k));
      expect(sameBytes(await readAll((await r2().get(done.blobKey)).body), data)).toBe(true);
    });
  }

  test('a store answering "not found" for more reads than the retries allow fails with UploadDataUnavailableError', async () => {
    const data = seeded(PART + 51, 34);
    const namespace = newNamespace("lie-too-long");
    const id = newId();
    const liar = lyingDriver(r2(), { matches: (key) => key === uploadDataPath(namespace, id), times: 4, mode: "missing" });
    const writer = await createUploadWriter(liar, { namespace, id, length: data.length }, testOptions({ validateRetries: 3 }));
    await writer.write(data);
    await expect(writer.finish()).rejects.toBeInstanceOf(UploadDataUnavailableError);
    expect(await blobKeysOf(await sha256Of(data))).toEqual([]);
    await writer.cancel();
  });

  test("stale data on re-read (no hasher state) is retried until the store serves the real bytes", async () => {
    const data = seeded(PART + 52, 35);
    const digest = await sha256Of(data);
    const namespace = newNamespace("lie-stale");
    const id = newId();
    const driver = r2();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions());
    await writer.write(data);
    await driver.delete(...(await keysUnder(driver, uploadHashStatesPrefix(namespace, id))));
    const liar = lyingDriver(driver, { matches: (key) => key === uploadDataPath(namespace, id), times: 2, mode: "stale", reads: "get" });
    const options = testOptions({ validateRetries: 2 });
    const resumed = await resumeUploadWriter(liar, { namespace, id }, options);
    // Resuming read the missing hasher state again (as a possibly stale read) before giving up on
    // it; only the finish's re-reads of the data are counted here.
    options.delays.length = 0;
    const done = await resumed.finish(digest);
    expect(liar.lies()).toBe(2);
    expect(options.delays).toHaveLength(2);
    expect(done.digest).toBe(digest);
  });

  test("an already-present blob is linked without a second copy (nothing completed, copied or put at the blob path)", async () => {
    const data = seeded(2 * PART + 3, 40);
    const digest = await sha256Of(data);
    const driver = r2();
    const first = await createUploadWriter(driver, { namespace: newNamespace("dup-a"), id: newId(), length: data.length }, testOptions());
    await first.write(data);
    await first.finish();
    const blobEtag = (await driver.stat(blobDataPath(digest))).etag;

    for (const declare of [false, true]) {
      const ops: RecordedOp[] = [];
      const namespace = newNamespace(`dup-${declare}`);
      const counted = recordingDriver(r2(), ops);
      const writer = await createUploadWriter(
        counted,
        { namespace, id: newId(), length: data.length, ...(declare ? { declaredDigest: digest } : {}) },
        testOptions(),
      );
      await writer.write(data);
      await writer.finish();
      const blobWrites = ops.filter((o) => o.key === blobDataPath(digest) && o.op !== "stat" && o.op !== "abort" && o.op !== "createMultipart");
      if (declare) {
        // The multipart upload targets the blob path; it is aborted, never completed.
        expect(blobWrites.map((o) => o.op)).toEqual(["uploadPart", "uploadPart"]);
        expect(ops.filter((o) => o.op === "abort" && o.key === blobDataPath(digest))).toHaveLength(1);
      } else {
        expect(blobWrites).toEqual([]);
        expect(ops.filter((o) => o.op === "get" && o.key === uploadDataPath(namespace, writer.id))).toEqual([]);
      }
      expect((await driver.stat(blobDataPath(digest))).etag).toBe(blobEtag);
      expect((await isLinked(driver, namespace, digest))?.size).toBe(data.length);
    }
  });

  test("cancel aborts the multipart upload and leaves no keys behind", async () => {
    const data = seeded(PART + 3 * MiB, 50);
    const namespace = newNamespace("cancel");
    const id = newId();
    const driver = r2();
    const digest = await sha256Of(data);
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length + 10, declaredDigest: digest }, testOptions());
    await writer.write(data);
    const info = JSON.parse(new TextDecoder().decode(await readAll((await driver.get(`${uploadPrefix(namespace, id)}info`)).body))) as {
      multipart: { key: string; uploadId: string };
    };
    await writer.cancel();
    expect(await keysUnder(driver, `docker/registry/v2/repositories/${namespace}/`)).toEqual([]);
    expect(await blobKeysOf(digest)).toEqual([]);
    await expect(driver.resumeMultipart(info.multipart.key, info.multipart.uploadId).uploadPart(3, new Uint8Array(1))).rejects.toBeInstanceOf(
      MultipartUnknownError,
    );
  });

  test("the storage keys are exactly Docker distribution's layout at each stage", async () => {
    const data = seeded(PART + 2 * MiB, 60);
    const digest = await sha256Of(data);
    const hex = digest.slice(7);
    const namespace = newNamespace("layout");
    const id = newId();
    const driver = r2();
    const repo = `repositories/${namespace}`;
    const keys = async () => relative([...(await keysUnder(driver, `docker/registry/v2/${repo}/`)), ...(await blobKeysOf(digest))]);
    const now = () => new Date("2026-11-20T10:11:12.345Z");

    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, testOptions({ now }));
    expect(await keys()).toEqual([`${repo}/_uploads/${id}/info`, `${repo}/_uploads/${id}/startedat`]);
    expect(new TextDecoder().decode(await readAll((await driver.get(`docker/registry/v2/${repo}/_uploads/${id}/startedat`)).body))).toBe(
      "2026-11-20T10:11:12Z",
    );

    await writer.write(data.subarray(0, MiB));
    expect(await keys()).toEqual([
      `${repo}/_uploads/${id}/hashstates/sha256/${MiB}`,
      `${repo}/_uploads/${id}/info`,
      `${repo}/_uploads/${id}/startedat`,
      `${repo}/_uploads/${id}/tail/${MiB}`,
    ]);

    await writer.write(data.subarray(MiB, PART + MiB));
    // One full part stored (its etag under parts/0), 1 MiB pending; the superseded state and tail are gone.
    expect(await keys()).toEqual([
      `${repo}/_uploads/${id}/hashstates/sha256/${PART + MiB}`,
      `${repo}/_uploads/${id}/info`,
      `${repo}/_uploads/${id}/parts/0`,
      `${repo}/_uploads/${id}/startedat`,
      `${repo}/_uploads/${id}/tail/${PART + MiB}`,
    ]);

    await writer.write(data.subarray(PART + MiB));
    await writer.finish();
    expect(await keys()).toEqual([`${repo}/_layers/sha256/${hex}/link`, `blobs/sha256/${hex.slice(0, 2)}/${hex}/data`]);
    expect(new TextDecoder().decode(await readAll((await driver.get(layerLinkPath(namespace, digest))).body))).toBe(digest);
  });
});
