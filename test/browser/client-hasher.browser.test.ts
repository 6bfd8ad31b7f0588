/**
 * The hasher Web Worker in real Chromium: digests equal node:crypto's on in-page generated
 * data, and a hash paused (checkpointed to IndexedDB), staged or not, continues after a reload to the same digest.
 */
import { createHash } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { launchChromium } from "../support/chromium.ts";
import { seededBytes } from "../support/seeded.ts";
import type { Harness } from "../pages/client-harness.ts";

const MiB = 1024 * 1024;
let browser: Browser;
let page: Page;

async function openHarness(p: Page) {
  await p.goto(`${inject("baseUrl")}/test/pages/client-harness`);
  await p.waitForFunction(() => "harness" in globalThis);
}
const expected = (size: number, seed: number) => `sha256:${createHash("sha256").update(seededBytes(size, seed)).digest("hex")}`;

beforeAll(async () => {
  browser = await launchChromium();
  page = await browser.newPage();
  await openHarness(page);
});
afterAll(async () => {
  await browser?.close();
});

test.each([0, 1, 16 * MiB - 1, 16 * MiB, 16 * MiB + 1, 100 * MiB])("the worker's digest of %i bytes equals node:crypto's", async (size) => {
  const result = await page.evaluate(([s]) => (globalThis as unknown as { harness: Harness }).harness.hash(s, 5, { key: `size-${s}` }), [size] as const);
  expect(result).toMatchObject({ kind: "done", digest: expected(size, 5), resumedAt: undefined, bytesRead: size });
  await page.evaluate(([s]) => (globalThis as unknown as { harness: Harness }).harness.forgetHash(`size-${s}`), [size] as const);
});

// With staging the hasher's checkpoints once went through the copier, which stored them late or
// never (it was ended with the pause): a CI run resumed 36 MiB behind the kill. `storedAt` is
// read the moment the paused result comes.
test.each([false, true])(
  "a hash paused mid-way (staged: %s) has its checkpoint stored when it says paused, and continues from it after a reload, to the same digest",
  async (stage) => {
    const size = 40 * MiB + 7;
    const key = `resume-${stage}`;
    const paused = await page.evaluate(
      ([s, i, at, k, st]) => (globalThis as unknown as { harness: Harness }).harness.hash(s, 9, { key: k, interval: i, pauseAt: at, stage: st }),
      [size, 8 * MiB, 20 * MiB, key, stage] as const,
    );
    expect(paused.kind).toBe("paused");
    if (paused.kind !== "paused") return;
    expect(paused.offset).toBeGreaterThanOrEqual(20 * MiB);
    expect(paused.storedAt).toBe(paused.offset);

    await page.reload();
    await page.waitForFunction(() => "harness" in globalThis);
    const resumed = await page.evaluate(([s, i, k]) => (globalThis as unknown as { harness: Harness }).harness.hash(s, 9, { key: k, interval: i }), [
      size,
      8 * MiB,
      key,
    ] as const);
    expect(resumed).toMatchObject({ kind: "done", digest: expected(size, 9), resumedAt: paused.offset, bytesRead: size - paused.offset });
    await page.evaluate((k) => (globalThis as unknown as { harness: Harness }).harness.forgetHash(k), key);
  },
);
