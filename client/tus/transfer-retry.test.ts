/**
 * The transfer's retries against a stand-in edge on node:http (test/support/fake-tus-edge.ts)
 * that fails on cue: 503 + Retry-After more times than the old fixed list of six delays allowed,
 * attempts counted again after progress, and the server's Retry-After reaching the policy.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { startFakeEdge, type FakeAnswer, type FakeEdge, type FakeRequest } from "../../test/support/fake-tus-edge.ts";
import { seededBytes } from "../../test/support/seeded.ts";
import { createNodeUploader, fileFromPath, type Uploader, type UploaderEvent, type UploadSnapshot } from "../node.ts";
import type { RetryPolicy } from "../retry.ts";
import { startTransfer } from "./transfer.ts";

let dir = "";
let edge: FakeEdge | undefined;
let uploader: Uploader | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-upload-retry-"));
});
afterEach(async () => {
  uploader?.destroy();
  uploader = undefined;
  await edge?.close();
  edge = undefined;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, size: number, seed: number) {
  const bytes = seededBytes(size, seed);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

const unavailable = (retryAfter = "0"): FakeAnswer => ({ status: 503, code: "STORAGE_UNAVAILABLE", headers: { "Retry-After": retryAfter } });

/** Resolves with the final snapshot once the upload is done or failed; collects every event. */
function settle(u: Uploader, events: UploaderEvent[]): Promise<UploadSnapshot> {
  return new Promise((resolve) => {
    u.on((event) => {
      events.push(event);
      const kind = event.upload.state.kind;
      if (event.type === "change" && (kind === "done" || kind === "failed")) resolve(event.upload);
    });
  });
}

test("12 answers 503 + Retry-After in a row (the old fixed list gave up after 7 tries): the upload waits them out, says so, and finishes", async () => {
  const { path, digest } = await fixture("flaky.bin", 3 * 1024 + 17, 3);
  // The second chunk fails 12 times: mid-upload, so every retry HEADs and resumes at 1024.
  edge = await startFakeEdge((req: FakeRequest) => (req.method === "PATCH" && req.offset === 1024 && req.seen < 12 ? unavailable() : undefined));
  // The browser's default (forever), in the Node uploader: no page needed to show it.
  uploader = createNodeUploader({ endpoint: edge.endpoint, stateDir: join(dir, "s-flaky"), chunkSize: 1024, retry: { maxAttempts: Infinity } });
  const events: UploaderEvent[] = [];
  const settled = settle(uploader, events);
  await uploader.add([await fileFromPath(path)]);
  const end = await settled;

  expect(end.state).toMatchObject({ kind: "done", digest });
  expect(edge.log.filter((line) => line === "PATCH 503")).toHaveLength(12);
  expect(events.filter((e) => e.type === "error")).toEqual([]); // waiting is not an error
  // While it waited the row stayed "uploading" and said why, with the edge's code.
  const waiting = events.flatMap((e) => (e.upload.retry ? [e.upload] : []));
  expect(waiting.map((u) => u.retry?.failures)).toContain(12);
  for (const u of waiting) {
    expect(u.state.kind).toBe("uploading");
    expect(u.notice?.message).toMatch(/^The upload server is unavailable \(503 STORAGE_UNAVAILABLE\); retrying (now|in \d+ s)\.$/);
  }
  expect(end.retry).toBeUndefined();
});

test("maxAttempts counts failures in a row: two at each of four chunks pass, three in a row end the upload with how many and how long", async () => {
  const { path } = await fixture("spread.bin", 4 * 1024, 5);
  edge = await startFakeEdge((req) => {
    if (req.method !== "PATCH") return undefined;
    const limit = req.offset === 3 * 1024 ? 3 : 2; // the last chunk fails once more than allowed
    return req.seen < limit ? unavailable() : undefined;
  });
  uploader = createNodeUploader({ endpoint: edge.endpoint, stateDir: join(dir, "s-spread"), chunkSize: 1024, retry: { maxAttempts: 3, baseDelayMs: 1 } });
  const events: UploaderEvent[] = [];
  const settled = settle(uploader, events);
  await uploader.add([await fileFromPath(path)]);
  const end = await settled;

  // 2 + 2 + 2 failures passed (9 > 3 in all), then the third in a row at the last chunk ended it.
  expect(edge.log.filter((line) => line === "PATCH 503")).toHaveLength(9);
  expect(edge.log.filter((line) => line === "PATCH 204")).toHaveLength(3);
  expect(end.state).toMatchObject({
    kind: "failed",
    error: {
      code: "SERVER",
      retryable: true,
      message: expect.stringMatching(/^The upload server kept failing \(503 STORAGE_UNAVAILABLE\) after 3 attempts over \d+ s; nothing is lost\.$/),
    },
  });
});

test("the server's Retry-After (seconds or date, on 429 and 503) reaches the policy; a 500 has none", async () => {
  const answers: FakeAnswer[] = [
    unavailable("7"),
    { status: 429, code: "RATE_LIMITED", headers: { "Retry-After": new Date(Date.now() + 60_000).toUTCString() } },
    { status: 500 },
  ];
  edge = await startFakeEdge((req) => (req.method === "POST" ? answers[req.seen] : undefined));
  const asked: (number | undefined)[] = [];
  const policy: RetryPolicy = {
    maxAttempts: Infinity,
    allows: () => true,
    delay(_retry, retryAfterMs) {
      asked.push(retryAfterMs);
      return 0; // the test only looks at what the policy was told
    },
  };
  const bytes = seededBytes(100, 9);
  const run = startTransfer({
    key: "k",
    file: new Blob([bytes]),
    size: bytes.length,
    name: "x.bin",
    type: "",
    endpoint: edge.endpoint,
    chunkSize: 1024,
    retry: policy,
    urlStorage: {
      findAllUploads: async () => [],
      findUploadsByFingerprint: async () => [],
      removeUpload: async () => {},
      addUpload: async () => "k",
    },
    waitForDigest: () => new Promise(() => {}),
    // Node's http stack sends no Blob; tus-js-client reads the body's `size`.
    toBody: async (file, start, end) => Object.assign(new Uint8Array(await file.slice(start, end).arrayBuffer()), { size: end - start }),
    digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
  });
  expect((await run.result).kind).toBe("done");
  expect(asked).toHaveLength(3);
  expect(asked[0]).toBe(7000);
  expect(asked[1]).toBeGreaterThan(50_000); // an HTTP-date a minute ahead (second precision)
  expect(asked[1]).toBeLessThanOrEqual(60_000);
  expect(asked[2]).toBeUndefined();
});
