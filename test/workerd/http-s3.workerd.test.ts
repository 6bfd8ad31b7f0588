/**
 * The HTTP API with STORAGE=s3 on a real S3 server (Ceph RGW, workerd-s3 project): tus uploads
 * through SELF with the digest declared at creation, mid-upload, on the last PATCH and never, a
 * wrong digest, and DELETE. Each test checks the store itself (through the S3 driver, not the R2
 * binding, which must stay untouched): the blob at its content-addressed path, no key and no open
 * multipart upload left behind.
 */
import { SELF, env } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { blobDataPath, uploadPrefix } from "../../edge/registry/paths.ts";
import { driverFor } from "../../edge/storage/from-env.ts";
import { sameBytes } from "../../edge/storage/conformance.ts";
import type { StorageDriver } from "../../edge/storage/driver.ts";
import { digestHex, formatReprDigest, type Sha256Digest } from "../../shared/digest.ts";
import { MiB, create, errorCode, getBlob, head, patch, seeded, sha256, upload } from "./http-support.ts";
import { multipartUploadsOf, openMultipartUploads } from "./s3-support.ts";

/** The driver the edge itself uses for this env: STORAGE=s3 must have given the S3 one. */
function store(): StorageDriver {
  const driver = driverFor(env);
  expect(driver.name).toBe("s3");
  return driver;
}

async function keysWith(fragment: string): Promise<string[]> {
  const driver = store();
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await driver.list("docker/registry/v2/", cursor === undefined ? {} : { cursor });
    keys.push(...page.keys.filter((k) => k.includes(fragment)));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

/** The blob is stored in S3 at its path, byte for byte, and served at /blobs; nothing of the upload is left. */
async function expectFinished(url: string, id: string, data: Uint8Array, digest: Sha256Digest): Promise<void> {
  expect((await store().stat(blobDataPath(digest))).size).toBe(data.length);
  expect(await env.BUCKET.head(blobDataPath(digest))).toBeNull();
  const blob = await getBlob(`/blobs/${digest}`);
  expect(blob.status).toBe(200);
  // sameBytes: toEqual walks a 17 MiB array element by element for seconds.
  expect(sameBytes(new Uint8Array(await blob.arrayBuffer()), data)).toBe(true);
  expect(await keysWith(id)).toEqual([]);
  expect(await multipartUploadsOf(blobDataPath(digest))).toEqual([]);
  const h = await head(url);
  expect([h.status, h.headers.get("upload-offset"), h.headers.get("content-location")]).toEqual([200, String(data.length), `/blobs/${digest}`]);
}

describe("tus over HTTP with STORAGE=s3 (Ceph RGW)", () => {
  test("digest declared at creation: the multipart upload targets the blob path and is completed after verification", async () => {
    const data = seeded(17 * MiB + 5, 301);
    const digest = await sha256(data);
    const { res, url, id } = await create({ length: data.length, headers: { "Repr-Digest": formatReprDigest(digest) } });
    expect(res.status).toBe(201);
    // Mid-upload the blob path holds nothing readable: the parts wait in an open multipart upload.
    await upload(url, data.subarray(0, 8 * MiB), 8 * MiB);
    await expect(store().stat(blobDataPath(digest))).rejects.toMatchObject({ name: "PathNotFoundError" });
    expect(await multipartUploadsOf(blobDataPath(digest))).toHaveLength(1);
    const last = await upload(url, data, 8 * MiB, undefined, 8 * MiB);
    expect(last.headers.get("content-location")).toBe(`/blobs/${digest}`);
    await expectFinished(url, id, data, digest);
  });

  test("digest on the last PATCH: finished under the upload, then moved to the blob path server-side", async () => {
    const data = seeded(16 * MiB + 3, 302);
    const digest = await sha256(data);
    const { url, id } = await create({ length: data.length });
    await upload(url, data.subarray(0, 16 * MiB), 8 * MiB);
    const last = await patch(url, 16 * MiB, data.subarray(16 * MiB), { headers: { "Repr-Digest": formatReprDigest(digest) } });
    expect(last.status).toBe(204);
    expect(last.headers.get("repr-digest")).toBe(formatReprDigest(digest));
    await expectFinished(url, id, data, digest);
  });

  test("digest declared mid-upload: the parts stored before it are moved once, the rest go to the blob path", async () => {
    const data = seeded(20 * MiB + 11, 303);
    const digest = await sha256(data);
    const { url, id } = await create({ length: data.length });
    await upload(url, data.subarray(0, 8 * MiB + 1), 8 * MiB + 1);
    const mid = await patch(url, 8 * MiB + 1, data.subarray(8 * MiB + 1, 12 * MiB), { headers: { "Repr-Digest": formatReprDigest(digest) } });
    expect(mid.status).toBe(204);
    await upload(url, data, 8 * MiB, undefined, 12 * MiB);
    await expectFinished(url, id, data, digest);
  });

  test("no digest ever declared: the edge finishes with the digest it computed", async () => {
    const data = seeded(9 * MiB + 1, 304);
    const digest = await sha256(data);
    const { url, id } = await create({ length: data.length, metadata: { filename: "s3.bin" } });
    const last = await upload(url, data, 5 * MiB);
    expect(last.headers.get("repr-digest")).toBe(formatReprDigest(digest));
    await expectFinished(url, id, data, digest);
  });

  test("a wrong digest: 400 DIGEST_INVALID, nothing at either blob path, no key or multipart upload left", async () => {
    const data = seeded(8 * MiB + 9, 305);
    const actual = await sha256(data);
    const wrong = await sha256(seeded(7, 7));
    const { url, id } = await create({ length: data.length, headers: { "Repr-Digest": formatReprDigest(wrong) } });
    const res = await upload(url, data, 8 * MiB).catch((e: Error) => e);
    expect(String(res)).toMatch(/400/);
    for (const d of [actual, wrong]) {
      await expect(store().stat(blobDataPath(d))).rejects.toMatchObject({ name: "PathNotFoundError" });
      expect(await keysWith(digestHex(d))).toEqual([]);
      expect(await multipartUploadsOf(blobDataPath(d))).toEqual([]);
    }
    expect(await keysWith(id)).toEqual([]);
    expect((await head(url)).status).toBe(404);
  });

  test("DELETE mid-upload: 204, the upload's keys and its open multipart upload are gone", async () => {
    const data = seeded(12 * MiB, 306);
    const { url, id } = await create({ length: data.length });
    await upload(url, data.subarray(0, 9 * MiB), 9 * MiB);
    expect((await keysWith(id)).length).toBeGreaterThan(0);
    const res = await SELF.fetch(url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" } });
    expect(res.status).toBe(204);
    expect(await keysWith(id)).toEqual([]);
    expect(await openMultipartUploads(uploadPrefix("anonymous", id))).toEqual([]);
    const again = await patch(url, 9 * MiB, data.subarray(9 * MiB));
    expect([again.status, await errorCode(again)]).toEqual([404, "UPLOAD_UNKNOWN"]);
  });
});
