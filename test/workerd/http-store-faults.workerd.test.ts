/**
 * A store fault is never a client error (issue 14): the real upload object, over HTTP, on the R2
 * binding wrapped by the fault-injecting driver (edge/storage/faulty.ts). Every failing call is
 * answered 503 with Retry-After (tus clients retry that; they give up on a 4xx), nothing committed
 * is lost, and once the store is well again the same client finishes with the right blob.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { createFaultyDriver, type FaultOp } from "../../edge/storage/faulty.ts";
import { MiB, create, errorCode, getBlob, head, offsetOf, patch, seeded, sha256, stubOf, upload } from "./http-support.ts";
import { formatReprDigest } from "../../shared/digest.ts";

/** Every call of `ops` by this upload's object fails (before taking effect) until healed. */
async function breakStore(id: string, ops: FaultOp[]): Promise<void> {
  await runInDurableObject(stubOf(id), (instance) => {
    instance.useDriver((driver) => createFaultyDriver(driver, { seed: 1, rates: { failBefore: 1 }, ops }));
  });
}

async function healStore(id: string): Promise<void> {
  await runInDurableObject(stubOf(id), (instance) => instance.useDriver(undefined));
}

async function expectUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503);
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  expect(await errorCode(res)).toBe("STORAGE_UNAVAILABLE");
}

describe("store faults answer 503 + Retry-After, and lose nothing", () => {
  test("a part that cannot be stored during a PATCH: 503 (not 400), the committed offset holds, the upload then finishes", async () => {
    const data = seeded(20 * MiB, 81);
    const { id, url } = await create({ length: data.length });
    await upload(url, data.subarray(0, 8 * MiB), 8 * MiB);
    await breakStore(id, ["uploadPart"]);
    await expectUnavailable(await patch(url, 8 * MiB, data.subarray(8 * MiB, 16 * MiB)));
    await healStore(id);
    const offset = await offsetOf(url);
    expect(offset).toBeGreaterThanOrEqual(8 * MiB);
    const last = await upload(url, data, 8 * MiB, undefined, offset);
    expect(last.headers.get("content-location")).toBe(`/blobs/${await sha256(data)}`);
  });

  test("the finish meets a store fault: 503, HEAD never says offset = length without the blob, then HEAD finishes it", async () => {
    const data = seeded(10 * MiB, 82);
    const digest = await sha256(data);
    const { id, url } = await create({ length: data.length });
    await upload(url, data.subarray(0, 8 * MiB), 8 * MiB);
    await breakStore(id, ["complete", "copy"]);
    await expectUnavailable(await patch(url, 8 * MiB, data.subarray(8 * MiB)));
    // Still broken: HEAD must not report the upload complete.
    const during = await head(url);
    expect(during.status === 503 || Number(during.headers.get("upload-offset")) < data.length).toBe(true);
    await healStore(id);
    const after = await head(url);
    expect(after.status).toBe(200);
    expect(after.headers.get("upload-offset")).toBe(String(data.length));
    expect(after.headers.get("content-location")).toBe(`/blobs/${digest}`);
    const blob = await getBlob(`/blobs/${digest}`);
    expect(await sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(digest);
  });

  test("a digest declared mid-upload while the store fails: 503 (not 500), and the declaration can be sent again", async () => {
    const data = seeded(20 * MiB, 83);
    const digest = await sha256(data);
    const { id, url } = await create({ length: data.length });
    await upload(url, data.subarray(0, 8 * MiB), 8 * MiB);
    await breakStore(id, ["createMultipart", "put", "copy", "complete"]);
    const declared = { headers: { "Repr-Digest": formatReprDigest(digest) } };
    await expectUnavailable(await patch(url, 8 * MiB, data.subarray(8 * MiB, 16 * MiB), declared));
    await healStore(id);
    const offset = await offsetOf(url);
    const res = await patch(url, offset, data.subarray(offset, 16 * MiB), declared);
    expect(res.status).toBe(204);
    const last = await upload(url, data, 8 * MiB, undefined, 16 * MiB);
    expect(last.headers.get("content-location")).toBe(`/blobs/${digest}`);
  });
});
