/**
 * `<edge-upload>` as a host page uses it (test/pages/element-harness.html, built into the test
 * server's build): files given the moment it is connected, the DOM events it dispatches with the
 * real library and edge, its token callback, and styling from outside (custom properties and
 * ::part). The page's own behaviour (rows, hooks, keyboard) is in page-render and page-upload.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { ElementHarness, RecordedEvent } from "../pages/element-harness.ts";
import { launchChromium } from "../support/chromium.ts";
import { seededBytes as seededFile } from "../support/seeded.ts";
import { dropFile, newIsolatedPage, seededBytes, sha256Digest, waitForState } from "./page-helpers.ts";

type W = { elementHarness: ElementHarness; __tokenCalls: number };
const MiB = 1024 * 1024;
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function openHarness(): Promise<Page> {
  const page = await newIsolatedPage(browser);
  await page.goto(`${inject("baseUrl")}/test/pages/element-harness.html`);
  await page.waitForFunction(() => "elementHarness" in window);
  return page;
}

const events = (page: Page) => page.evaluate(() => (window as unknown as W).elementHarness.events);

async function eventOf(page: Page, type: string, name: string): Promise<RecordedEvent> {
  await page
    .waitForFunction(
      ({ type, name }) => (window as unknown as W).elementHarness.events.some((e) => e.type === type && e.detail.name === name),
      { type, name },
      { timeout: 30_000, polling: 100 },
    )
    .catch(async (error: unknown) => {
      const seen = (await events(page)).map((e) => `${e.type} ${e.detail.name} ${e.detail.state} ${e.detail.error?.message ?? ""}`);
      throw new Error(`${String(error)}\nevents:\n${seen.join("\n")}`);
    });
  const found = (await events(page)).find((e) => e.type === type && e.detail.name === name);
  if (!found) throw new Error(`no ${type} for ${name}`);
  return found;
}

test("a file given while the element still lists the interrupted uploads is not lost: it goes to the uploader once that list is known", async () => {
  const page = await openHarness();
  await page.evaluate(() => (window as unknown as W).elementHarness.mountStandIn({ holdRestore: true }));
  await page.getByTestId("file-input").setInputFiles({ name: "early.txt", mimeType: "text/plain", buffer: Buffer.from("early bird") });
  // Not handed over yet: it could otherwise start a second row beside its own interrupted one.
  await expect(page.evaluate(() => (window as unknown as W).elementHarness.added.length)).resolves.toBe(0);
  await expect(page.evaluate(() => (window as unknown as W).elementHarness.finishRestore())).resolves.toBe(true);
  await page.waitForFunction(() => (window as unknown as W).elementHarness.added.length === 1);
  await expect(page.evaluate(() => (window as unknown as W).elementHarness.added)).resolves.toEqual([{ name: "early.txt", size: 10, kind: "File" }]);
  await page.close();
});

test("a file given in the same task that connects the element is uploaded, and upload-done bubbles out of the shadow root with the digest and blob URL", async () => {
  const page = await openHarness();
  const size = 3 * MiB + 5;
  const expected = sha256Digest(seededFile(size, 21));
  // Connect the element and give it a file through its input before anything else can run.
  await page.evaluate(
    (size) => (window as unknown as W).elementHarness.mountRealWithFile({ endpoint: "/files", "chunk-size": "1MiB" }, { name: "at-once.bin", size, seed: 21 }),
    size,
  );
  const done = await eventOf(page, "upload-done", "at-once.bin");
  expect(done).toMatchObject({ bubbles: true, composed: true });
  expect(done.detail).toMatchObject({ name: "at-once.bin", size, state: "done", digest: expected, uploaded: size });
  expect(new URL(done.detail.blobUrl ?? "").pathname).toBe(`/blobs/${expected}`);
  const blob = await fetch(new URL(new URL(done.detail.blobUrl ?? "").pathname, inject("baseUrl")));
  expect(sha256Digest(new Uint8Array(await blob.arrayBuffer()))).toBe(expected);
  // Progress came before, from the same element.
  const progress = (await events(page)).filter((e) => e.type === "upload-progress" && e.detail.name === "at-once.bin");
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.every((e) => e.bubbles && e.composed)).toBe(true);
  await page.close();
});

test("a dropped file is uploaded with the token the host's callback returns, asked before the requests", async () => {
  const page = await openHarness();
  await page.evaluate(() => {
    const w = window as unknown as W;
    w.__tokenCalls = 0;
    w.elementHarness.mountReal({ endpoint: "/files" });
    const el = document.querySelector("edge-upload");
    // The test server allows anonymous uploads: an empty token sends no Authorization header.
    if (el) el.token = () => (w.__tokenCalls++, "");
  });
  const spec = { name: "dropped.bin", size: 2 * MiB, seed: 22, lastModified: 1_700_000_000_022 };
  await dropFile(page, spec);
  await waitForState(page, spec.name, ["done", "failed"]);
  const done = await eventOf(page, "upload-done", spec.name);
  expect(done.detail.digest).toBe(sha256Digest(seededBytes(spec.seed, spec.size)));
  await expect(page.evaluate(() => (window as unknown as W).__tokenCalls)).resolves.toBeGreaterThan(0);
  await page.close();
});

test("a host page styles the element through --edge-upload-* custom properties and ::part()", async () => {
  const page = await openHarness();
  await page.addStyleTag({
    content: "edge-upload { --edge-upload-accent: rgb(1, 2, 3); } edge-upload::part(drop-zone) { border-style: dotted; }",
  });
  await page.evaluate(() => (window as unknown as W).elementHarness.mountStandIn());
  const zone = page.getByTestId("drop-zone");
  await expect(zone.evaluate((el) => getComputedStyle(el).borderTopStyle)).resolves.toBe("dotted");
  await expect(zone.locator("svg").evaluate((el) => getComputedStyle(el).color)).resolves.toBe("rgb(1, 2, 3)");
  await page.close();
});
