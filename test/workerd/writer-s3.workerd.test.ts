import { describe, expect, test } from "vitest";
import { formatDigest, type Sha256Digest } from "../../shared/digest.ts";
import { blobDataPath, uploadPrefix } from "../../edge/registry/paths.ts";
import { isLinked } from "../../edge/registry/blobs.ts";
import { readAll } from "../../edge/storage/body.ts";
import { chunked, sameBytes, seeded } from "../../edge/storage/conformance.ts";
import type { StorageDriver } from "../../edge/storage/driver.ts";
import { DigestMismatchError, createUploadWriter, resumeUploadWriter, type WriterOptions } from "../../edge/writer/index.ts";
import { countingFetch, s3 } from "./s3-support.ts";
import { keysUnder } from "./writer-support.ts";

const MiB = 1024 * 1024;
/** S3's (and R2's) minimum part size keeps the tests fast while exercising every multipart rule. */
const PART = 5 * MiB;
const WRONG: Sha256Digest = `sha256:${"cd".repeat(32)}`;

const options = (): WriterOptions => ({ partSize: PART, retryDelayMs: 1, sleep: async () => undefined });

let ids = 0;
/** A 64-hex upload id, as the HTTP layer's Durable Object ids. */
function newId(): string {
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(28)), (b) => b.toString(16).padStart(2, "0")).join("");
  return ((++ids).toString(16).padStart(8, "0") + rand).slice(0, 64);
}
/** The bucket is shared by the run's S3 tests: one namespace per test. */
const newNamespace = (label: string) => `s3tests/${label}-${(++ids).toString(36)}`;

async function sha256Of(bytes: Uint8Array): Promise<Sha256Digest> {
  return formatDigest(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** The irregular write sizes, cycling; the last write takes the rest. */
function irregularSizes(total: number): number[] {
  const pattern = [1, 3 * MiB, 5 * MiB + 1, 17 * MiB, 2 * MiB - 1, 7];
  const sizes: number[] = [];
  for (let i = 0, left = total; left > 0; i++) {
    const n = Math.min(pattern[i % pattern.length] as number, left);
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/** Writes `data` in `writes` (as 64 KiB-chunked streams), finishes, and checks blob, link and cleanup. */
async function uploadAndCheck(driver: StorageDriver, data: Uint8Array, writes: number[], declare: boolean) {
  const digest = await sha256Of(data);
  const namespace = newNamespace("sizes");
  const id = newId();
  const writer = await createUploadWriter(driver, { namespace, id, length: data.length, ...(declare ? { declaredDigest: digest } : {}) }, options());
  let at = 0;
  for (const n of writes) {
    expect(await writer.write(chunked(data.subarray(at, at + n), 64 * 1024))).toEqual({ written: n, offset: at + n });
    at += n;
  }
  expect(await writer.finish()).toEqual({ digest, length: data.length, blobKey: blobDataPath(digest) });
  const stored = await readAll((await driver.get(blobDataPath(digest))).body);
  expect(stored.length).toBe(data.length);
  expect(sameBytes(stored, data)).toBe(true);
  expect((await isLinked(driver, namespace, digest))?.size).toBe(data.length);
  expect(await keysUnder(driver, uploadPrefix(namespace, id))).toEqual([]);
}

describe("upload writer on S3: irregular writes give correct blobs", () => {
  for (const size of [0, 1, PART - 1, PART, PART + 1, 2 * PART + 12_345]) {
    test(`${size} bytes from irregular writes, digest computed, moved by server-side copy`, async () => {
      const data = seeded(size, 7_000 + size);
      await uploadAndCheck(s3(), data, irregularSizes(size), false);
    });
  }

  test("2 parts + 12,345 bytes from one write, digest declared at creation (multipart targets the blob path)", async () => {
    const data = seeded(2 * PART + 12_345, 7_001);
    await uploadAndCheck(s3(), data, [data.length], true);
  });

  test("26 MiB + 5 from the issue's sequence 1 B, 3 MiB, 5 MiB+1, 17 MiB, 1 MiB+3, digest computed", async () => {
    const writes = [1, 3 * MiB, 5 * MiB + 1, 17 * MiB, MiB + 3];
    const data = seeded(
      writes.reduce((a, b) => a + b),
      7_002,
    );
    await uploadAndCheck(s3(), data, writes, false);
  });

  test("an upload resumed by a new writer (after a restart) finishes with the right blob", async () => {
    const driver = s3();
    const data = seeded(2 * PART + 777, 7_003);
    const namespace = newNamespace("resume");
    const id = newId();
    const first = await createUploadWriter(driver, { namespace, id, length: data.length }, options());
    await first.write(data.subarray(0, PART + 100));
    const second = await resumeUploadWriter(driver, { namespace, id }, options());
    expect(second.offset).toBe(PART + 100);
    await second.write(data.subarray(PART + 100));
    const done = await second.finish();
    expect(done.digest).toBe(await sha256Of(data));
    expect(sameBytes(await readAll((await driver.get(done.blobKey)).body), data)).toBe(true);
  });

  test("a wrong digest at finish: DigestMismatchError, nothing at any blob path, the upload's keys removed", async () => {
    const driver = s3();
    const data = seeded(PART + 9, 7_004);
    const namespace = newNamespace("wrong");
    const id = newId();
    const writer = await createUploadWriter(driver, { namespace, id, length: data.length }, options());
    await writer.write(data);
    await expect(writer.finish(WRONG)).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(driver.stat(blobDataPath(WRONG))).rejects.toMatchObject({ name: "PathNotFoundError" });
    await expect(driver.stat(blobDataPath(await sha256Of(data)))).rejects.toMatchObject({ name: "PathNotFoundError" });
    expect(await keysUnder(driver, uploadPrefix(namespace, id))).toEqual([]);
  });
});

describe("upload writer on S3: the move at finish is server-side", () => {
  /** Writes everything, then counts the bytes through the driver during finish alone. */
  async function finishCounted(data: Uint8Array, withCopy: boolean) {
    const counter = countingFetch();
    const full = s3({ fetch: counter.fetch });
    let driver: StorageDriver = full;
    if (!withCopy) {
      // The same store without `copy`, as the R2 binding: the writer streams the blob instead.
      const { copy: _copy, ...rest } = full;
      driver = rest;
    }
    const writer = await createUploadWriter(driver, { namespace: newNamespace("move"), id: newId(), length: data.length }, options());
    await writer.write(data);
    counter.reset();
    const done = await writer.finish();
    const bytes = { sent: counter.sent, received: counter.received, copies: counter.requests.filter((r) => r.copySource).length };
    expect(sameBytes(await readAll((await full.get(done.blobKey)).body), data)).toBe(true);
    return bytes;
  }

  test("whole parts only: finish moves a 10 MiB blob with CopyObject and ~0 blob bytes through the driver", async () => {
    const data = seeded(2 * PART, 7_100);
    const moved = await finishCounted(data, true);
    expect(moved.copies).toBe(1);
    // Only small requests: the Complete XML, upload record, link, deletes; their responses.
    expect(moved.sent).toBeLessThan(16 * 1024);
    expect(moved.received).toBeLessThan(16 * 1024);
  });

  test("with a tail: finish sends the tail as the last part, and nothing else of the blob", async () => {
    const tail = 12_345;
    const data = seeded(2 * PART + tail, 7_101);
    const moved = await finishCounted(data, true);
    expect(moved.copies).toBe(1);
    expect(moved.sent).toBeGreaterThanOrEqual(tail);
    expect(moved.sent).toBeLessThan(tail + 16 * 1024);
    expect(moved.received).toBeLessThan(16 * 1024);
  });

  test("contrast: without copy (like the R2 binding) the same finish streams the whole blob through the driver, both ways", async () => {
    const data = seeded(2 * PART, 7_102);
    const streamed = await finishCounted(data, false);
    expect(streamed.copies).toBe(0);
    expect(streamed.received).toBeGreaterThanOrEqual(data.length);
    expect(streamed.sent).toBeGreaterThanOrEqual(data.length);
  });
});
