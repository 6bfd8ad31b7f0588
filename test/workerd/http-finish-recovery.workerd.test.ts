/**
 * The finish as one recoverable state (issue 14): an upload whose bytes are all committed but
 * whose finish was cut short by a crash is never reported complete before its blob is verified
 * and linked, and any request (or the object's alarm alone) drives it to finished.
 *
 * Each test builds the state a crash leaves behind directly in the stores, as a restarted
 * Durable Object would find it: the upload's keys written by the writer on the same R2 bucket,
 * the object's record written into its storage, and no object instance that remembers anything.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { getConfig } from "../../edge/config.ts";
import { layerLinkPath } from "../../edge/registry/paths.ts";
import { driverFor } from "../../edge/storage/from-env.ts";
import type { SessionRecord } from "../../edge/upload/record.ts";
import { createUploadWriter } from "../../edge/writer/index.ts";
import { formatUploadMetadata } from "../../shared/protocol.ts";
import type { Sha256Digest } from "../../shared/digest.ts";
import { BASE, MiB, bucketKeys, getBlob, head, patch, seeded, sha256, stubOf } from "./http-support.ts";

const NS = "anonymous";

/**
 * An upload with every byte committed, as a crash leaves it: its record in the object (not
 * finished), its keys in the bucket. `step` says how far the finish got before the crash.
 */
async function crashedUpload(
  data: Uint8Array,
  opts: { declare?: boolean; step: "committed" | "linked" | "recorded" },
): Promise<{ url: string; id: string; digest: Sha256Digest }> {
  const id = env.UPLOADS.newUniqueId().toString();
  const digest = await sha256(data);
  const config = getConfig(env);
  const driver = driverFor(env);
  const writer = await createUploadWriter(
    driver,
    { namespace: NS, id, length: data.length, ...(opts.declare ? { declaredDigest: digest } : {}) },
    { partSize: config.partSize },
  );
  await writer.write(data);
  const record: SessionRecord = {
    id,
    namespace: NS,
    length: data.length,
    metadata: formatUploadMetadata({ filename: "crash.bin" }),
    expiresAt: Date.now() + 3600_000,
    finishing: true,
    ...(opts.declare ? { declaredDigest: digest } : {}),
  };
  if (opts.step !== "committed") {
    // The finish ran up to the link (and, for "recorded", the object wrote `finished`), then the
    // process died before the upload's keys were removed.
    await writer
      .finish(record.declaredDigest, {
        linked: async () => {
          throw new Error("simulated crash after the link");
        },
      })
      .catch(() => undefined);
    if (opts.step === "recorded") {
      delete record.finishing;
      record.finished = { digest, at: Date.now() };
      record.cleanup = true;
    }
  }
  await runInDurableObject(stubOf(id), async (_instance, state) => {
    await state.storage.put("upload", record);
    await state.storage.setAlarm(Date.now() + 60_000);
  });
  return { url: `${BASE}/files/${id}`, id, digest };
}

async function expectFinished(res: Response, digest: Sha256Digest, length: number): Promise<void> {
  expect(res.status).toBeLessThan(300);
  expect(res.headers.get("upload-offset")).toBe(String(length));
  expect(res.headers.get("content-location")).toBe(`/blobs/${digest}`);
  expect(res.headers.get("repr-digest")).not.toBeNull();
}

async function expectBlob(digest: Sha256Digest, data: Uint8Array): Promise<void> {
  const blob = await getBlob(`/blobs/${digest}`);
  expect(blob.status).toBe(200);
  expect(await sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(digest);
  expect(await env.BUCKET.head(layerLinkPath(NS, digest))).not.toBeNull();
}

describe("a finish cut short by a crash converges", () => {
  for (const declare of [false, true]) {
    const how = declare ? "digest declared at creation" : "no digest declared";
    test(`all bytes committed, finish never ran (${how}): HEAD finishes it before answering, never offset = length alone`, async () => {
      const data = seeded(9 * MiB + 123, declare ? 71 : 72);
      const { url, id, digest } = await crashedUpload(data, { declare, step: "committed" });
      await expectFinished(await head(url), digest, data.length);
      await expectBlob(digest, data);
      expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    });
  }

  test("all bytes committed, nobody comes back: the object's alarm finishes the upload", async () => {
    const data = seeded(3 * MiB, 73);
    const { url, id, digest } = await crashedUpload(data, { step: "committed" });
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect(await env.BUCKET.head(layerLinkPath(NS, digest))).not.toBeNull();
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    await expectFinished(await head(url), digest, data.length);
  });

  test("blob linked, record not yet finished: a repeated final PATCH answers the finished result", async () => {
    const data = seeded(9 * MiB, 74);
    const { url, id, digest } = await crashedUpload(data, { step: "linked" });
    // The client re-sends its last chunk because it never saw the answer.
    const last = 8 * MiB;
    const res = await patch(url, last, data.subarray(last));
    // Finished meanwhile, so this chunk has no place: 409 with the true offset, then HEAD says done.
    expect(res.status).toBe(409);
    expect(res.headers.get("upload-offset")).toBe(String(data.length));
    await expectFinished(await head(url), digest, data.length);
    await expectBlob(digest, data);
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
  });

  test("finished recorded, keys left behind by a crash during cleanup: HEAD is 200 and finished, the alarm removes the keys", async () => {
    const data = seeded(2 * MiB, 75);
    const { url, id, digest } = await crashedUpload(data, { step: "recorded" });
    expect((await bucketKeys()).filter((k) => k.includes(id)).length).toBeGreaterThan(0);
    await expectFinished(await head(url), digest, data.length);
    await runDurableObjectAlarm(stubOf(id));
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    await expectFinished(await head(url), digest, data.length);
    await expectBlob(digest, data);
  });

  test("a PATCH with an empty body at offset = length finishes an interrupted finish", async () => {
    const data = seeded(6 * MiB, 76);
    const { url, digest } = await crashedUpload(data, { step: "committed" });
    await expectFinished(await patch(url, data.length, new Uint8Array(0)), digest, data.length);
    await expectBlob(digest, data);
  });
});
