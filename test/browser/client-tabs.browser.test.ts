/**
 * Web Locks across tabs: two tabs on one file, one uploads and the other waits ("busy"), then
 * takes over and completes with no bytes sent; a browser profile that never saw the file
 * completes an already stored blob with no bytes sent (digest declared at creation).
 */
import { createHash } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { launchChromium } from "../support/chromium.ts";
import { seededBytes } from "../support/seeded.ts";
import type { Harness } from "../pages/client-harness.ts";
import { type H, untilUpload } from "./harness-page.ts";

const MiB = 1024 * 1024;
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

function patches(page: Page): string[] {
  const seen: string[] = [];
  page.on("request", (req) => {
    if (req.method() === "PATCH") seen.push(req.url());
  });
  return seen;
}

async function open(page: Page, options: Parameters<Harness["create"]>[0]) {
  await page.goto(`${inject("baseUrl")}/test/pages/client-harness`);
  await page.waitForFunction(() => "harness" in globalThis);
  await page.evaluate((o) => (globalThis as unknown as H).harness.create(o), options);
}

test("two tabs on one file: one uploads, the other waits busy and then completes with no bytes sent; a new profile too", async () => {
  const size = 24 * MiB + 3;
  const expected = `sha256:${createHash("sha256").update(seededBytes(size, 31)).digest("hex")}`;
  const context = await browser.newContext();
  const a = await context.newPage();
  const b = await context.newPage();
  const patchesA = patches(a);
  const patchesB = patches(b);
  await open(a, { chunkSize: 8 * MiB, limitRate: { transfer: 12 * MiB } });
  await open(b, { chunkSize: 8 * MiB });

  const [ua] = await a.evaluate(([s]) => (globalThis as unknown as H).harness.addGenerated("shared.bin", s, 31), [size] as const);
  if (!ua) throw new Error("not added");
  await untilUpload(a, ua.key, (u) => u.state.kind === "uploading");
  const [ub] = await b.evaluate(([s]) => (globalThis as unknown as H).harness.addGenerated("shared.bin", s, 31), [size] as const);
  expect(ub?.key).toBe(ua.key);
  await untilUpload(b, ua.key, (u) => u.state.kind === "busy");
  expect((await untilUpload(b, ua.key, () => true)).state).toEqual({ kind: "busy", reason: "other-tab" });

  const doneA = await untilUpload(a, ua.key, (u) => u.state.kind === "done");
  expect(doneA.digest).toBe(expected);
  expect(patchesA.length).toBeGreaterThan(0);
  const doneB = await untilUpload(b, ua.key, (u) => u.state.kind === "done");
  expect(doneB.state).toMatchObject({ kind: "done", digest: expected, bytesSent: 0 });
  expect(doneB.counters.sent).toBe(0);
  expect(patchesB).toEqual([]);
  // B waited (busy) and then took over: a HEAD or a deduped creation, no PATCH at all.
  const statesB = await b.evaluate((k) => (globalThis as unknown as H).harness.states(k), ua.key);
  expect(statesB.indexOf("busy")).toBeGreaterThanOrEqual(0);
  expect(statesB.indexOf("busy")).toBeLessThan(statesB.indexOf("done"));
  await context.close();

  // A profile with no local state: the digest goes on the creation request and the edge,
  // which has the blob, completes the upload at once.
  const fresh = await browser.newContext();
  const c = await fresh.newPage();
  const patchesC = patches(c);
  await open(c, {});
  const [uc] = await c.evaluate(([s]) => (globalThis as unknown as H).harness.addGenerated("shared.bin", s, 31), [size] as const);
  const doneC = await untilUpload(c, uc?.key ?? "", (u) => u.state.kind === "done");
  expect(doneC.state).toMatchObject({ kind: "done", digest: expected, bytesSent: 0 });
  expect(patchesC).toEqual([]);
  await fresh.close();
});
