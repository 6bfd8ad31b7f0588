import { describe, expect, test } from "vitest";
import { readAll } from "./storage/body.ts";
import { chunked, sameBytes, seeded } from "./storage/conformance.ts";
import { createMemoryDriver } from "./storage/memory.ts";
import { recordingDriver, type RecordedOp } from "./storage/testing.ts";
import { blobDataPath, uploadDataPath } from "./paths.ts";
import { WriterClosedError, createUploadWriter, resumeUploadWriter } from "./writer.ts";
import type { StorageDriver } from "./storage/driver.ts";
import { formatDigest } from "../shared/digest.ts";

const PART = 5 * 1024 * 1024;
const ID = "f".repeat(64);

async function sha256(bytes: Uint8Array) {
  return formatDigest(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

// The workerd tests (test/workerd/writer-*.workerd.test.ts) cover the writer on R2; these run it
// in Node (hash-wasm as shipped) over the memory driver, including the server-side copy branch
// that the R2 binding lacks.
describe("upload writer in Node over the memory driver", () => {
  for (const copy of [true, false]) {
    test(`moves assembled data with ${copy ? "the store's server-side copy" : "a streamed, ranged copy"} and the bytes match`, async () => {
      const data = seeded(2 * PART + 99, 70);
      const ops: RecordedOp[] = [];
      const driver = recordingDriver(createMemoryDriver({ copy }), ops);
      const writer = await createUploadWriter(driver, { namespace: "node/test", id: ID, length: data.length }, { partSize: PART });
      for (const [from, to] of [[0, 1], [1, 3_000_000], [3_000_000, 8_000_000], [8_000_000, data.length]] as const) {
        await writer.write(chunked(data.subarray(from, to), 100_000));
      }
      const resumed = await resumeUploadWriter(driver, { namespace: "node/test", id: ID }, { partSize: PART });
      const done = await resumed.finish();
      expect(done.digest).toBe(await sha256(data));
      expect(sameBytes(await readAll((await driver.get(blobDataPath(done.digest))).body), data)).toBe(true);
      expect(ops.some((o) => o.op === "copy")).toBe(copy);
      const rangedReads = ops.filter((o) => o.op === "get" && o.key === uploadDataPath("node/test", ID));
      expect(rangedReads.map((o) => o.bytes)).toEqual(copy ? [] : [PART, PART, 99]);
    });
  }

  test("a part the store refuses mid-body closes the writer; one resumed from storage continues from the last commit", async () => {
    const data = seeded(3 * PART + 5, 71);
    const memory = createMemoryDriver();
    let failAt = 2; // the second part of the body fails once
    const flaky: StorageDriver = {
      ...memory,
      createMultipart: async (key) => {
        const mp = await memory.createMultipart(key);
        return { ...mp, uploadPart: (n, b) => (n === failAt ? ((failAt = 0), Promise.reject(new Error("store down"))) : mp.uploadPart(n, b)) };
      },
      resumeMultipart: (key, id) => {
        const mp = memory.resumeMultipart(key, id);
        return { ...mp, uploadPart: (n, b) => (n === failAt ? ((failAt = 0), Promise.reject(new Error("store down"))) : mp.uploadPart(n, b)) };
      },
    };
    const writer = await createUploadWriter(flaky, { namespace: "node/flaky", id: ID, length: data.length }, { partSize: PART });
    await expect(writer.write(chunked(data, 1_000_000))).rejects.toThrow("store down");
    expect(writer.offset).toBe(PART);
    await expect(writer.write(new Uint8Array(1))).rejects.toBeInstanceOf(WriterClosedError);
    const resumed = await resumeUploadWriter(flaky, { namespace: "node/flaky", id: ID }, { partSize: PART });
    expect(resumed.offset).toBe(PART);
    await resumed.write(data.subarray(PART));
    const done = await resumed.finish();
    expect(done.digest).toBe(await sha256(data));
    expect(sameBytes(await readAll((await memory.get(done.blobKey)).body), data)).toBe(true);
  });
});
