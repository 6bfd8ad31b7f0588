import { describe, expect, test } from "vitest";
import { readAll } from "../../edge/storage/body.ts";
import { blobDataPath } from "../../edge/registry/paths.ts";
import { isLinked } from "../../edge/registry/blobs.ts";
import { createUploadWriter } from "../../edge/writer/index.ts";
import { MiB, PART, chunked, irregularSizes, keysUnder, newId, newNamespace, r2, sameBytes, seeded, sha256Of, testOptions } from "./writer-support.ts";

/** Sizes from the issue: empty, one byte, around one part, several parts. */
const SIZES = [0, 1, PART - 1, PART, PART + 1, 2 * PART + 12_345];

async function upload(size: number, writes: number[], declare: boolean, asStream: boolean) {
  const driver = r2();
  const data = seeded(size, size + 1);
  const digest = await sha256Of(data);
  const namespace = newNamespace("sizes");
  const writer = await createUploadWriter(driver, { namespace, id: newId(), length: size, ...(declare ? { declaredDigest: digest } : {}) }, testOptions());
  let at = 0;
  for (const n of writes) {
    const body = data.subarray(at, at + n);
    // Streams arrive in 64 KiB chunks, like a request body; the other variant is one big array.
    const result = await writer.write(asStream ? chunked(body, 64 * 1024) : body);
    at += n;
    expect(result).toEqual({ written: n, offset: at });
    expect(writer.offset).toBe(at);
  }
  const done = await writer.finish();
  expect(done).toEqual({ digest, length: size, blobKey: blobDataPath(digest) });
  const stored = await readAll((await driver.get(blobDataPath(digest))).body);
  expect(stored.length).toBe(size);
  expect(sameBytes(stored, data)).toBe(true);
  expect(await sha256Of(stored)).toBe(digest);
  expect((await isLinked(driver, namespace, digest))?.size).toBe(size);
  expect(await keysUnder(driver, `docker/registry/v2/repositories/${namespace}/_uploads/`)).toEqual([]);
}

describe("upload writer on R2: bytes and SHA-256 match for every size and write pattern", () => {
  for (const size of SIZES) {
    test(`${size} bytes from irregular writes (1 B, 3 MiB, 5 MiB+1, 17 MiB, ... cut to size), digest computed, moved by streamed copy`, async () => {
      await upload(size, irregularSizes(size), false, true);
    });
    test(`${size} bytes from one large write, digest declared at creation (multipart targets the blob path)`, async () => {
      await upload(size, size === 0 ? [] : [size], true, false);
    });
  }

  test("26 MiB + 5 from the issue's sequence 1 B, 3 MiB, 5 MiB+1, 17 MiB, 1 MiB+3, digest declared", async () => {
    const writes = [1, 3 * MiB, 5 * MiB + 1, 17 * MiB, MiB + 3];
    await upload(
      writes.reduce((a, b) => a + b),
      writes,
      true,
      true,
    );
  });
});
