/**
 * Issue 18 in Chromium: a copy of each file kept in this browser (OPFS) lets an upload continue
 * after a crash without the file. Files are given through the page's plain <input type=file>, so
 * there is no FileSystemFileHandle to fall back on: only the copy can save the person the search.
 * The crash itself (SIGKILL mid-upload, relaunch, one click finishes from the copy) is
 * engines-staging.browser.test.ts, in Chromium, Firefox ESR and WebKitGTK; here is the rest:
 *
 * - A copy changed on disk fails its fingerprint check: it is not used, it is removed, and the row
 *   asks for the file; given again, the upload finishes.
 * - A file over `stageLimit` is not copied, the row says so, and the upload works as before.
 *
 * Locators only (no document.querySelector): they pierce open shadow roots, so the test holds
 * whether the rows sit in index.html or inside the <edge-upload> element.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect, inject, test } from "vitest";
import {
  type CountingProxy,
  type FileSpec,
  type KillableBrowser,
  launchKillable,
  muteViteReloads,
  seededBytes,
  sha256Digest,
  startCountingProxy,
} from "./page-helpers.ts";

const MiB = 1024 * 1024;
const SCREENSHOTS = "test-results/screenshots";
/** Hash and send side by side: the copy is written while the upload runs, as for a large file. */
const QUERY = "?chunk=8MiB&hashFirst=false";
const GATE = 12 * MiB + 4321; // inside the second chunk

let proxy: CountingProxy;
const profiles: string[] = [];
let running: KillableBrowser | undefined;

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  proxy = await startCountingProxy(inject("baseUrl"));
});
afterEach(async () => {
  await running?.close();
  running = undefined;
  proxy.setGate(Number.POSITIVE_INFINITY);
});
afterAll(async () => {
  await proxy?.close();
  for (const dir of profiles) await rm(dir, { recursive: true, force: true });
});

async function newProfile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "page-staging-profile-"));
  profiles.push(dir);
  return dir;
}

async function openPage(browser: KillableBrowser, query: string): Promise<Page> {
  await muteViteReloads(browser.context);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.setViewportSize({ width: 1000, height: 800 });
  await page.goto(`${proxy.url}/${query}`);
  await page.getByTestId("drop-zone").waitFor();
  return page;
}

/** Gives a seeded file through the page's plain file input (no handle), built in the page with a fixed date. */
async function chooseFile(page: Page, spec: FileSpec): Promise<void> {
  await page.getByTestId("file-input").evaluate(
    (input, { source, spec }) => {
      const make = (0, eval)(`(${source})`) as (seed: number, size: number) => Uint8Array<ArrayBuffer>;
      const file = new File([make(spec.seed, spec.size)], spec.name, { type: "application/octet-stream", lastModified: spec.lastModified });
      const dt = new DataTransfer();
      dt.items.add(file);
      (input as HTMLInputElement).files = dt.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    },
    { source: seededBytes.toString(), spec },
  );
}

/** The row of `name`, narrowed by extra attribute selectors (waitFor() then waits for them). */
function row(page: Page, name: string, attrs = ""): Locator {
  return page.locator(`[data-testid=upload][data-name="${name}"]${attrs}`);
}

async function waitForEnd(page: Page, name: string): Promise<void> {
  await page.locator(`[data-testid=upload][data-name="${name}"]:is([data-state=done], [data-state=failed])`).waitFor({ timeout: 120_000 });
}

/** The names of the copies in this origin's OPFS staging directory (the library's layout, client/staging/opfs.ts). */
function stagedCopies(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    let dir: FileSystemDirectoryHandle;
    try {
      dir = await root.getDirectoryHandle("edge-upload-staged");
    } catch {
      return [];
    }
    const names: string[] = [];
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    return names;
  });
}

async function hook(locator: Locator, name: string): Promise<string | null> {
  return locator.getAttribute(name);
}

async function expectBlob(blobUrl: string | null, expected: string): Promise<void> {
  const blob = await fetch(new URL(new URL(blobUrl ?? "", proxy.url).pathname, inject("baseUrl")));
  expect(blob.status).toBe(200);
  expect(sha256Digest(new Uint8Array(await blob.arrayBuffer()))).toBe(expected);
}

/**
 * Session 1 of the crash tests: the file given through the input, the edge held at GATE bytes, the
 * whole file kept in OPFS, then Chromium SIGKILLed. Returns the upload's key.
 */
async function uploadThenKill(profile: string, spec: FileSpec): Promise<{ key: string; uploadedAtKill: number }> {
  running = await launchKillable(profile);
  const page = await openPage(running, QUERY);
  const forwardedBefore = proxy.forwarded;
  proxy.setGate(forwardedBefore + GATE);
  await chooseFile(page, spec);
  await proxy.waitForForwarded(forwardedBefore + GATE);
  await row(page, spec.name, `[data-staged="true"][data-state="uploading"]`).waitFor({ timeout: 60_000 });
  const r = row(page, spec.name);
  await expect(r.locator(".upload__staged").innerText()).resolves.toBe("Kept in this browser so it can continue after a crash.");
  const key = (await hook(r, "data-key")) ?? "";
  const uploadedAtKill = Number(await hook(r, "data-uploaded"));
  await expect(hook(r, "data-state")).resolves.toBe("uploading"); // hashed, still sending
  await expect(hook(r, "data-has-handle")).resolves.toBeNull(); // a plain input's file: no handle
  await expect(stagedCopies(page)).resolves.toEqual([key]);
  await running.kill();
  running = undefined;
  expect(proxy.forwarded - forwardedBefore).toBe(GATE); // killed mid-upload
  await proxy.waitForNoOpenPatch();
  proxy.setGate(Number.POSITIVE_INFINITY);
  return { key, uploadedAtKill };
}

test("a kept copy changed on disk fails its fingerprint check: not used, removed, the row asks for the file, and the file given again finishes", async () => {
  const spec: FileSpec = { name: "staged-tampered.bin", size: 24 * MiB, seed: 182, lastModified: 1_700_000_018_002 };
  const expected = sha256Digest(seededBytes(spec.seed, spec.size));
  const profile = await newProfile();
  const { key } = await uploadThenKill(profile, spec);

  // Session 2: before the page runs, change bytes inside the copy's first MiB (what the fingerprint samples).
  running = await launchKillable(profile);
  await muteViteReloads(running.context);
  const page = running.context.pages()[0] ?? (await running.context.newPage());
  await page.route(`${proxy.url}/blank`, (route) => route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>blank</title>" }));
  await page.goto(`${proxy.url}/blank`);
  await page.evaluate(async (name) => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("edge-upload-staged");
    const writable = await (await dir.getFileHandle(name)).createWritable({ keepExistingData: true });
    await writable.write({ type: "write", position: 1000, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) });
    await writable.close();
  }, key);
  await page.goto(`${proxy.url}/${QUERY}`);
  const r = row(page, spec.name);
  await row(page, spec.name, `[data-state="interrupted"][data-reason="needs-file"][data-staged="false"]`).waitFor();
  await expect(r.locator(".upload__staged").innerText()).resolves.toBe("The copy kept in this browser did not match the file, so it was not used.");
  await expect(r.locator(".upload__message").innerText()).resolves.toMatch(/Drop or choose the same file again/);
  await expect(r.locator("button[data-action=choose]").isVisible()).resolves.toBe(true);
  await expect(stagedCopies(page)).resolves.toEqual([]);

  // The file given again continues the row (hash from its checkpoint, upload from the edge's offset).
  await chooseFile(page, spec);
  await waitForEnd(page, spec.name);
  await expect(hook(r, "data-state")).resolves.toBe("done");
  await expect(hook(r, "data-source")).resolves.toBeNull();
  await expect(hook(r, "data-digest")).resolves.toBe(expected);
  await expectBlob(await hook(r, "data-blob"), expected);
  await expect(page.getByTestId("upload").count()).resolves.toBe(1);
  await expect(stagedCopies(page)).resolves.toEqual([]);
});

test("a file over stageLimit is not kept, the row says so, and it uploads as before", async () => {
  const spec: FileSpec = { name: "over-limit.bin", size: 3 * MiB + 5, seed: 183, lastModified: 1_700_000_018_003 };
  const expected = sha256Digest(seededBytes(spec.seed, spec.size));
  running = await launchKillable(await newProfile());
  const page = await openPage(running, "?chunk=8MiB&stageLimit=1MiB");
  proxy.setGate(proxy.forwarded); // hold every PATCH byte while the row is read
  await chooseFile(page, spec);
  const r = row(page, spec.name);
  await row(page, spec.name, `[data-staged="false"]`).waitFor();
  await expect(r.locator(".upload__staged").innerText()).resolves.toBe(
    "Not kept in this browser (larger than 1.0 MiB): after a crash the file may have to be given again.",
  );
  await expect(stagedCopies(page)).resolves.toEqual([]);
  proxy.setGate(Number.POSITIVE_INFINITY);
  await waitForEnd(page, spec.name);
  await expect(hook(r, "data-state")).resolves.toBe("done");
  await expect(hook(r, "data-digest")).resolves.toBe(expected);
  await expectBlob(await hook(r, "data-blob"), expected);
  await expect(stagedCopies(page)).resolves.toEqual([]);
});
