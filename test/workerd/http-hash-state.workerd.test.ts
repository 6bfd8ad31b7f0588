/**
 * A saved hasher state that cannot be loaded (corrupt, or written by a build that no longer
 * exists) never lets bytes in unverified (issue 14): the edge rebuilds the state from stored data
 * where it can read it, and otherwise removes the upload and answers 410 UPLOAD_RESTART_REQUIRED,
 * which makes a tus client start the upload again instead of failing at every finish.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { uploadHashStatePath } from "../../edge/registry/paths.ts";
import { MiB, bucketKeys, create, errorCode, head, offsetOf, patch, seeded, sha256, stubOf, upload } from "./http-support.ts";

const NS = "anonymous";

/** Overwrites the upload's saved hasher state at its committed offset and restarts its object. */
async function corruptState(id: string, offset: number): Promise<void> {
  const key = uploadHashStatePath(NS, id, offset);
  expect(await env.BUCKET.head(key)).not.toBeNull();
  await env.BUCKET.put(key, new Uint8Array([1, 2, 3, 4, 5]));
  await runInDurableObject(stubOf(id), (instance) => instance.useDriver(undefined)); // forget the cached writer, as a restart does
}

describe("an unusable hasher state", () => {
  test("digest declared, parts already at the blob path's multipart upload: HEAD answers 410 too", async () => {
    const data = seeded(20 * MiB, 94);
    const { id, url } = await create({ length: data.length, metadata: { digest: await sha256(data) } });
    await upload(url, data.subarray(0, 8 * MiB), 8 * MiB);
    await corruptState(id, 8 * MiB);
    expect((await head(url)).status).toBe(410);
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
  });

  test("digest declared, parts already at the blob path's multipart upload: 410 UPLOAD_RESTART_REQUIRED, the upload removed", async () => {
    const data = seeded(20 * MiB, 91);
    const { id, url } = await create({ length: data.length, metadata: { digest: await sha256(data) } });
    await upload(url, data.subarray(0, 8 * MiB), 8 * MiB);
    await corruptState(id, 8 * MiB);
    // The next PATCH is refused before a byte is taken in.
    const res = await patch(url, 8 * MiB, data.subarray(8 * MiB, 9 * MiB));
    expect(res.status).toBe(410);
    expect(await errorCode(res)).toBe("UPLOAD_RESTART_REQUIRED");
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    // Gone: a tus client's resume HEAD now starts a new upload.
    expect((await head(url)).status).toBe(404);
  });

  test("an upload still within its first part: the state is rebuilt from the stored tail and the blob is right", async () => {
    const data = seeded(3 * MiB, 92);
    const { id, url } = await create({ length: data.length, metadata: { digest: await sha256(data) } });
    await upload(url, data.subarray(0, MiB), MiB);
    await corruptState(id, MiB);
    expect(await offsetOf(url)).toBe(MiB);
    const last = await upload(url, data, MiB, undefined, MiB);
    expect(last.headers.get("content-location")).toBe(`/blobs/${await sha256(data)}`);
  });

  test("no digest declared: the finish re-reads the assembled data, and the blob is right", async () => {
    const data = seeded(18 * MiB, 93);
    const { id, url } = await create({ length: data.length });
    await upload(url, data.subarray(0, 9 * MiB), 9 * MiB);
    await corruptState(id, 9 * MiB);
    const last = await upload(url, data, 9 * MiB, undefined, 9 * MiB);
    expect(last.status).toBe(204);
    expect(last.headers.get("content-location")).toBe(`/blobs/${await sha256(data)}`);
  });
});
