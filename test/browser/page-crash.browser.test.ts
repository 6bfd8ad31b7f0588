/**
 * The whole system survives a killed browser: Chromium is SIGKILLed while the page hashes and
 * uploads a 64 MiB file, started again on the same profile, the page reopened shows the
 * interrupted upload, and the same file dropped again finishes it. What had to be redone is
 * MEASURED: bytes the browser sent (read off the wire by the proxy in front of the stack) and
 * bytes hashed (the library's counters, surfaced on the row).
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import {
  type CountingProxy,
  dropFile,
  type KillableBrowser,
  launchKillable,
  muteViteReloads,
  rowHooks,
  seededBytes,
  sha256Digest,
  startCountingProxy,
  waitForState,
} from "./page-helpers.ts";

const MiB = 1024 * 1024;
const SCREENSHOTS = "test-results/screenshots";
/** Equal to the edge's part size, so "one chunk" is also "one part". */
const CHUNK = 8 * MiB;
/** The library's default hasher checkpoint interval. */
const CHECKPOINT = 16 * MiB;
/**
 * Hash and send side by side (hashFirst=false), hashing held to 8 MiB/s (8 s for the file) so the kill lands
 * mid-hash as well as mid-upload; the upload itself is held by the proxy's gate.
 */
const QUERY = `?chunk=8MiB&hashFirst=false&hashRate=8MiB`;
const GATE = 20 * MiB + 123_456; // inside the third chunk, not on a part boundary

let proxy: CountingProxy;
let profile = "";
let running: KillableBrowser | undefined;

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  proxy = await startCountingProxy(inject("baseUrl"));
  profile = await mkdtemp(join(tmpdir(), "page-crash-profile-"));
});
afterAll(async () => {
  await running?.close();
  await proxy?.close();
  await rm(profile, { recursive: true, force: true });
});

async function openPage(browser: KillableBrowser): Promise<Page> {
  await muteViteReloads(browser.context);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.setViewportSize({ width: 1000, height: 800 });
  await page.goto(`${proxy.url}/${QUERY}`);
  await page.getByTestId("drop-zone").waitFor();
  return page;
}

test("Chromium SIGKILLed mid-hash and mid-upload, restarted on its profile: the same file dropped again resumes both and ends done", async () => {
  const spec = { name: "crash-64mib.bin", size: 64 * MiB, seed: 99, lastModified: 1_700_000_000_099 };
  const bytes = seededBytes(spec.seed, spec.size);
  const expected = sha256Digest(bytes);

  // Session 1: drop, let 20 MiB through to the edge, wait until hashing is past two
  // checkpoints but not finished, and kill the whole browser.
  running = await launchKillable(profile);
  let page = await openPage(running);
  const sentBefore = proxy.patchBytes;
  const forwardedBefore = proxy.forwarded;
  proxy.setGate(forwardedBefore + GATE);
  await dropFile(page, spec);
  await proxy.waitForForwarded(forwardedBefore + GATE);
  await page.waitForFunction(
    ({ name, at }) =>
      Number(
        (document.querySelector("edge-upload")?.shadowRoot ?? document).querySelector(`[data-testid=upload][data-name="${name}"]`)?.getAttribute("data-hashed"),
      ) >= at,
    { name: spec.name, at: 2 * CHECKPOINT + 4 * MiB },
    { polling: 50 },
  );
  const atKill = await rowHooks(page, spec.name);
  await running.kill();
  running = undefined;
  const hashedAtKill = Number(atKill.hashed);
  // The row says "hashing" until the digest is known; the transfer runs alongside.
  expect(atKill.state).toBe("hashing");
  expect(atKill.digest).toBeNull();
  expect(Number(atKill.uploaded)).toBeGreaterThan(0);
  expect(hashedAtKill).toBeLessThan(spec.size); // killed mid-hash
  const sentSession1 = proxy.patchBytes - sentBefore;
  const reachedEdge = proxy.forwarded - forwardedBefore;
  expect(reachedEdge).toBe(GATE); // and mid-upload
  await proxy.waitForNoOpenPatch();

  // Session 2: the same profile; the page lists the interrupted upload at once.
  proxy.setGate(Number.POSITIVE_INFINITY);
  running = await launchKillable(profile);
  page = await openPage(running);
  await waitForState(page, spec.name, ["interrupted"]);
  const interrupted = page.locator("#interrupted");
  await expect(interrupted.isVisible()).resolves.toBe(true);
  await expect(interrupted.innerText()).resolves.toMatch(/Drop or choose the same file again/);
  await page.screenshot({ path: `${SCREENSHOTS}/resume-list-after-crash.png`, fullPage: true });
  await page.setViewportSize({ width: 360, height: 780 });
  await page.screenshot({ path: `${SCREENSHOTS}/resume-list-after-crash-360.png`, fullPage: true });
  await expect(page.evaluate(() => document.documentElement.scrollWidth)).resolves.toBeLessThanOrEqual(360);
  await page.setViewportSize({ width: 1000, height: 800 });

  const sentBefore2 = proxy.patchBytes;
  await dropFile(page, spec);
  await waitForState(page, spec.name, ["done", "failed"]);
  const done = await rowHooks(page, spec.name);
  const session = await page
    .getByTestId("upload")
    .evaluate((el) => ({ hashed: Number(el.getAttribute("data-session-hashed")), sent: Number(el.getAttribute("data-session-sent")) }));
  const sentSession2 = proxy.patchBytes - sentBefore2;
  await expect(page.getByTestId("upload").count()).resolves.toBe(1); // continued its row, no second one

  expect(done.state).toBe("done");
  expect(done.digest).toBe(expected);
  const resumedHashAt = Number(done.resumedHashAt);
  const resumedUploadAt = Number(done.resumedUploadAt);
  expect(done.resumedHashAt).not.toBeNull();
  expect(done.resumedUploadAt).not.toBeNull();

  // Hashing: resumed from a checkpoint, and only the rest was read again in session 2.
  const reHashed = hashedAtKill - resumedHashAt; // hashedAtKill is the last value the row showed: a lower bound
  expect(resumedHashAt).toBeGreaterThan(0);
  expect(reHashed).toBeLessThanOrEqual(CHECKPOINT);
  expect(session.hashed).toBe(spec.size - resumedHashAt);

  // Upload: resumed at what the edge had committed, which it had received; all bytes the
  // browser put on the wire in both sessions, minus the file, is what was sent twice.
  const reSent = sentSession1 + sentSession2 - spec.size;
  expect(resumedUploadAt).toBeGreaterThan(0);
  expect(resumedUploadAt).toBeLessThanOrEqual(reachedEdge);
  expect(sentSession2).toBe(spec.size - resumedUploadAt);
  expect(reSent).toBeLessThanOrEqual(CHUNK);

  // The blob the edge serves is the file.
  const blob = await fetch(new URL(new URL(done.blob ?? "", proxy.url).pathname, inject("baseUrl")));
  expect(blob.status).toBe(200);
  expect(sha256Digest(new Uint8Array(await blob.arrayBuffer()))).toBe(expected);

  console.log(
    JSON.stringify({
      hashedAtKill,
      resumedHashAt,
      reHashedAtLeast: reHashed,
      session2Hashed: session.hashed,
      sentSession1,
      reachedEdgeSession1: reachedEdge,
      resumedUploadAt,
      sentSession2,
      session2SentCounter: session.sent,
      reSent,
    }),
  );
});
