/**
 * `<edge-upload>` as a host page uses it (test/pages/element-harness.html, built into the test
 * server's build), in Chromium, Firefox ESR and WebKitGTK (test/support/browsers.ts): files given
 * the moment it is connected, the DOM events it dispatches with the real library and edge, its
 * token callback, and styling from outside (custom properties and ::part). The page's own
 * behaviour (rows, hooks, keyboard) is in page-render and page-upload.
 *
 * Every test runs in all three engines: each step is something every driver does (open a URL,
 * run a script in the page, give a file input paths on disk). The drop is dispatched by the
 * harness in the page (a script-built DataTransfer on DragEvents), not by the driver: only
 * Playwright can hand one to its own dispatchEvent. What stays Chromium-only lives elsewhere:
 * the signed "Open" link in a fresh context (element-link), layout and keyboard checks
 * (page-render), the File System Access handles (page-upload, page-crash).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import type { ElementHarness, RecordedEvent } from "../pages/element-harness.ts";
import { ENGINES, type EngineBrowser, launch } from "../support/browsers.ts";
import { seededBytes } from "../support/seeded.ts";
import { sha256Digest } from "./page-helpers.ts";

type W = { elementHarness: ElementHarness; __tokenCalls: number };
const MiB = 1024 * 1024;

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "element-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openHarness(browser: EngineBrowser): Promise<void> {
  await browser.open(`${inject("baseUrl")}/test/pages/element-harness.html`);
  await browser.waitFor(() => "elementHarness" in window, undefined, 30_000);
}

const events = (browser: EngineBrowser) => browser.evaluate(() => (window as unknown as W).elementHarness.events);

async function eventOf(browser: EngineBrowser, type: string, name: string): Promise<RecordedEvent> {
  await browser
    .waitFor(({ type, name }) => (window as unknown as W).elementHarness.events.some((e) => e.type === type && e.detail.name === name), { type, name }, 60_000)
    .catch(async (error: unknown) => {
      const seen = (await events(browser)).map((e) => `${e.type} ${e.detail.name} ${e.detail.state} ${e.detail.error?.message ?? ""}`);
      throw new Error(`${String(error)}\nevents:\n${seen.join("\n")}`);
    });
  const found = (await events(browser)).find((e) => e.type === type && e.detail.name === name);
  if (!found) throw new Error(`no ${type} for ${name}`);
  return found;
}

/** The blob the edge serves at a blob URL's path: its digest. */
async function servedDigest(blobUrl: string | undefined): Promise<string> {
  const res = await fetch(new URL(new URL(blobUrl ?? "").pathname, inject("baseUrl")));
  expect(res.status).toBe(200);
  return sha256Digest(new Uint8Array(await res.arrayBuffer()));
}

describe.each(ENGINES)("%s", (engine) => {
  // Bytes of this engine's own: the edge dedupes by digest, and a file another engine uploaded
  // already would finish at creation, with no upload to watch.
  const seed = (n: number) => n + 100 * ENGINES.indexOf(engine);
  let browser: EngineBrowser;
  let profile = "";

  beforeAll(async () => {
    profile = await mkdtemp(join(tmpdir(), `element-${engine}-`));
    browser = await launch(engine, { profileDir: profile });
  });
  afterAll(async () => {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
  });

  test("a file given while the element still lists the interrupted uploads is not lost: it goes to the uploader once that list is known", async () => {
    const early = join(dir, `early-${engine}.txt`);
    await writeFile(early, "early bird");
    await openHarness(browser);
    await browser.evaluate(() => (window as unknown as W).elementHarness.mountStandIn({ holdRestore: true }));
    await browser.setFiles("[data-testid=file-input]", [early]);
    // The change event has run (the driver returns after it); nothing handed over yet: it could
    // otherwise start a second row beside its own interrupted one.
    await expect(browser.evaluate(() => (window as unknown as W).elementHarness.added.length)).resolves.toBe(0);
    await expect(browser.evaluate(() => (window as unknown as W).elementHarness.finishRestore())).resolves.toBe(true);
    await browser.waitFor(() => (window as unknown as W).elementHarness.added.length === 1, undefined, 30_000);
    await expect(browser.evaluate(() => (window as unknown as W).elementHarness.added)).resolves.toEqual([
      { name: `early-${engine}.txt`, size: 10, kind: "File" },
    ]);
  });

  test("a file given in the same task that connects the element is uploaded, and upload-done bubbles out of the shadow root with the digest and blob URL", async () => {
    await openHarness(browser);
    const size = 3 * MiB + 5;
    const file = { name: "at-once.bin", size, seed: seed(21) };
    const expected = sha256Digest(seededBytes(size, file.seed));
    // Connect the element and give it a file through its input before anything else can run.
    await browser.evaluate((file) => (window as unknown as W).elementHarness.mountRealWithFile({ endpoint: "/files", "chunk-size": "1MiB" }, file), file);
    const done = await eventOf(browser, "upload-done", file.name);
    expect(done).toMatchObject({ bubbles: true, composed: true });
    expect(done.detail).toMatchObject({ name: file.name, size, state: "done", digest: expected, uploaded: size });
    expect(new URL(done.detail.blobUrl ?? "").pathname).toBe(`/blobs/${expected}`);
    expect(await servedDigest(done.detail.blobUrl)).toBe(expected);
    // Progress came before, from the same element.
    const progress = (await events(browser)).filter((e) => e.type === "upload-progress" && e.detail.name === file.name);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => e.bubbles && e.composed)).toBe(true);
  });

  test("a dropped file is uploaded with the token the host's callback returns, asked before the requests", async () => {
    await openHarness(browser);
    await browser.evaluate(() => {
      const w = window as unknown as W;
      w.__tokenCalls = 0;
      w.elementHarness.mountReal({ endpoint: "/files" });
      const el = document.querySelector("edge-upload");
      // The test server allows anonymous uploads: an empty token sends no Authorization header.
      if (el) el.token = () => (w.__tokenCalls++, "");
    });
    const file = { name: "dropped.bin", size: 2 * MiB, seed: seed(22) };
    await browser.evaluate((file) => (window as unknown as W).elementHarness.dropSeededFile(file), file);
    const done = await eventOf(browser, "upload-done", file.name);
    expect(done.detail.digest).toBe(sha256Digest(seededBytes(file.size, file.seed)));
    await expect(browser.evaluate(() => (window as unknown as W).__tokenCalls)).resolves.toBeGreaterThan(0);
  });

  test("a file whose upload the edge refuses ends in upload-error, bubbling out of the shadow root with the error in its detail", async () => {
    await openHarness(browser);
    // A token the edge cannot verify: 401, the upload fails (until the host gives another token).
    await browser.evaluate(() =>
      (window as unknown as W).elementHarness.mountRealWithFile({ endpoint: "/files", token: "not-a-token" }, { name: "refused.bin", size: 1024, seed: 23 }),
    );
    const failed = await eventOf(browser, "upload-error", "refused.bin");
    expect(failed).toMatchObject({ bubbles: true, composed: true });
    expect(failed.detail).toMatchObject({ name: "refused.bin", size: 1024, state: "failed", uploaded: 0 });
    expect(failed.detail.error).toMatchObject({ code: "AUTH", message: expect.any(String) });
  });

  test("a host page styles the element through --edge-upload-* custom properties and ::part()", async () => {
    await openHarness(browser);
    await browser.evaluate(() => {
      const style = document.createElement("style");
      style.textContent = "edge-upload { --edge-upload-accent: rgb(1, 2, 3); } edge-upload::part(drop-zone) { border-style: dotted; }";
      document.head.append(style);
      (window as unknown as W).elementHarness.mountStandIn();
    });
    const styles = await browser.evaluate((_arg, find) => {
      const zone = find("[data-testid=drop-zone]");
      const icon = zone?.querySelector("svg");
      return { border: zone ? getComputedStyle(zone).borderTopStyle : null, icon: icon ? getComputedStyle(icon).color : null };
    });
    expect(styles).toEqual({ border: "dotted", icon: "rgb(1, 2, 3)" });
  });
});
