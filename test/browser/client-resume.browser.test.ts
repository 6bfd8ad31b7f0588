/**
 * Closing the page mid-hash and mid-upload, then reopening it, resumes both; the bytes hashed
 * and sent again are measured (the library's counters, and the PATCH requests Chromium reports
 * with their Upload-Offset), and the edge's blob is compared with node:crypto's digest.
 * A different file with the same name is refused; the same file resumes.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { launchPersistent } from "../support/chromium.ts";
import { seededBytes } from "../support/seeded.ts";
import { type H, untilUpload } from "./harness-page.ts";

const MiB = 1024 * 1024;
const CHUNK = 8 * MiB;
const INTERVAL = 8 * MiB;
let profile = "";
let context: BrowserContext;

/** Body sizes of the PATCH requests a page starts, from their Upload-Offset (fixed chunking). */
function patchBodies(page: Page, size: number): number[] {
  const bodies: number[] = [];
  page.on("request", (req) => {
    if (req.method() !== "PATCH") return;
    const offset = Number(req.headers()["upload-offset"]);
    bodies.push(Math.min(CHUNK, size - offset));
  });
  return bodies;
}

async function openHarness(): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${inject("baseUrl")}/test/pages/client-harness`);
  await page.waitForFunction(() => "harness" in globalThis);
  return page;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function blobDigest(digest: string): Promise<string> {
  const res = await fetch(`${inject("baseUrl")}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return sha(new Uint8Array(await res.arrayBuffer()));
}

beforeAll(async () => {
  profile = await mkdtemp(join(tmpdir(), "edge-upload-profile-"));
  context = await launchPersistent(profile);
});
afterAll(async () => {
  await context?.close();
  await rm(profile, { recursive: true, force: true });
});

test("a page closed mid-hash and mid-upload resumes both from an OPFS handle: re-hashed <= one checkpoint, re-sent <= one chunk", async () => {
  const size = 48 * MiB + 5;
  const expected = sha(seededBytes(size, 13));

  const first = await openHarness();
  const sent1 = patchBodies(first, size);
  await first.evaluate(
    ([c, i, hr, tr]) =>
      (globalThis as unknown as H).harness.create({ hashFirst: false, chunkSize: c, checkpointInterval: i, limitRate: { hash: hr, transfer: tr } }),
    [CHUNK, INTERVAL, 6 * MiB, 12 * MiB] as const,
  );
  const [added] = await first.evaluate(([s]) => (globalThis as unknown as H).harness.addOpfs("resume.bin", s, 13), [size] as const);
  if (!added) throw new Error("not added");
  const key = added.key;
  // Past the first chunk means its PATCH was answered (tus sends one PATCH at a time).
  const before = await untilUpload(first, key, (u) => u.hash.bytes >= 2 * INTERVAL && u.transfer.bytes > CHUNK);
  await first.close();
  expect(before.hash.bytes).toBeLessThan(size); // closed mid-hash...
  expect(before.state.kind).toBe("hashing"); // ...and mid-upload (the final PATCH waits for the digest)

  const second = await openHarness();
  const sent2 = patchBodies(second, size);
  await second.evaluate(([c, i]) => (globalThis as unknown as H).harness.create({ chunkSize: c, checkpointInterval: i }), [CHUNK, INTERVAL] as const);
  const restored = await second.evaluate(() => (globalThis as unknown as H).harness.restore());
  expect(restored.map((u) => [u.key, u.state, u.hasHandle])).toEqual([[key, { kind: "interrupted", reason: "reload" }, true]]);
  await second.evaluate((k) => (globalThis as unknown as H).harness.resume(k), key);
  const done = await untilUpload(second, key, (u) => u.state.kind === "done");

  expect(done.digest).toBe(expected);
  expect(done.resumedHashAt).toBeGreaterThanOrEqual(INTERVAL);
  expect(done.resumedUploadAt).toBeGreaterThanOrEqual(CHUNK);
  // Re-hashed: what the first page had hashed (as last observed) plus all the second one hashed, minus the file.
  const rehashed = before.hash.bytes + done.counters.hashRead - size;
  expect(done.counters.hashRead).toBe(size - (done.resumedHashAt ?? 0));
  expect(rehashed).toBeLessThanOrEqual(INTERVAL);
  // Re-sent: every PATCH body both pages started, minus the file.
  expect(done.counters.sent).toBe(sum(sent2));
  expect(sum(sent1) + sum(sent2) - size).toBeLessThanOrEqual(CHUNK);
  expect(await blobDigest(expected)).toBe(expected);
  await second.close();
});

test("after a reload, a different file with the same name is refused and the same file resumes", async () => {
  const size = 24 * MiB + 1;
  const expected = sha(seededBytes(size, 21));

  const first = await openHarness();
  // No copy kept in this browser (OPFS staging): this test is about the file given again and its
  // fingerprint check; continuing from a kept copy is page-staging's test.
  await first.evaluate(([c, tr]) => (globalThis as unknown as H).harness.create({ chunkSize: c, limitRate: { transfer: tr }, staging: false }), [
    CHUNK,
    12 * MiB,
  ] as const);
  const [added] = await first.evaluate(([s]) => (globalThis as unknown as H).harness.addGenerated("report.bin", s, 21), [size] as const);
  if (!added) throw new Error("not added");
  await untilUpload(first, added.key, (u) => u.transfer.bytes > CHUNK);
  await first.close();

  const second = await openHarness();
  const sent2 = patchBodies(second, size);
  await second.evaluate(([c]) => (globalThis as unknown as H).harness.create({ chunkSize: c, staging: false }), [CHUNK] as const);
  const restored = await second.evaluate(() => (globalThis as unknown as H).harness.restore());
  expect(restored.filter((u) => u.name === "report.bin").map((u) => u.state)).toEqual([{ kind: "interrupted", reason: "needs-file" }]);

  const other = await second.evaluate(([s]) => (globalThis as unknown as H).harness.addGenerated("report.bin", s, 22), [size] as const);
  expect(other).toEqual([]);
  expect(await second.evaluate(() => (globalThis as unknown as H).harness.errors())).toEqual([
    expect.objectContaining({ key: added.key, code: "FILE_CHANGED" }),
  ]);
  expect(await second.evaluate(() => (globalThis as unknown as H).harness.list().filter((u) => u.name === "report.bin").length)).toBe(1);

  const same = await second.evaluate(([s]) => (globalThis as unknown as H).harness.addGenerated("report.bin", s, 21), [size] as const);
  expect(same.map((u) => u.key)).toEqual([added.key]);
  const done = await untilUpload(second, added.key, (u) => u.state.kind === "done");
  expect(done.resumedUploadAt).toBeGreaterThanOrEqual(CHUNK);
  expect(done.counters.sent).toBe(sum(sent2));
  expect(sum(sent2)).toBeLessThanOrEqual(size - CHUNK);
  expect(done.digest).toBe(expected);
  expect(await blobDigest(expected)).toBe(expected);
  await second.close();
});
