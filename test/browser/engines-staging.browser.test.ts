/**
 * Issue 18 in every engine (Chromium, Firefox ESR, WebKitGTK, driven through
 * test/support/browsers.ts): a file chosen in the page's plain file input, so there is no
 * FileSystemFileHandle to fall back on in any of them (Firefox and WebKit have none at all), is
 * kept in this browser's origin private file system while it is hashed; the browser is SIGKILLed
 * mid-upload and relaunched on the same profile, and one click on the row finishes the upload from
 * the kept copy: the file is not given again, the blob is right, and the copy is gone afterwards.
 *
 * What each engine needs for it (set up by browsers.ts, docs/page.md "Engines"):
 * - Chromium: nothing (OPFS and sync access handles ship on).
 * - Firefox: OPFS and sync access handles ship on; `navigator.storage.persist()` needs the prefs
 *   dom.storageManager.prompt.testing(.allow), or it waits on a prompt no one answers.
 * - WebKitGTK: the Storage API and OPFS (FileSystem, AccessHandle) are off by default and are
 *   switched on by webkit-launcher.py, whose WebsiteDataManager keeps its data on disk, under the
 *   profile, so the copy survives the kill. Its backend refuses sync access handles
 *   (NotSupportedError), so the copy is written with createWritable there (client/staging/opfs.ts):
 *   before that fallback this test failed in WebKitGTK (the row never said the file was kept).
 *
 * page-staging.browser.test.ts covers the rest of staging in Chromium (fingerprint check, quota
 * fallback); this file keeps to what a person can do in any browser.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { ENGINES, type EngineBrowser, launch } from "../support/browsers.ts";
import { type CountingProxy, seededBytes, sha256Digest, startCountingProxy } from "./page-helpers.ts";

const MiB = 1024 * 1024;
const FILE_INPUT = "[data-testid=file-input]";
/** Hash and send side by side: the copy is written while the upload runs, as for a large file. */
const QUERY = "?chunk=8MiB&hashFirst=false";
const GATE = 12 * MiB + 4321; // inside the second chunk

let dir = "";
let proxy: CountingProxy;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "engines-staging-"));
  proxy = await startCountingProxy(inject("baseUrl"));
});
afterAll(async () => {
  await proxy?.close();
  await rm(dir, { recursive: true, force: true });
});

function rowSelector(name: string, attrs = ""): string {
  return `[data-testid=upload][data-name="${name}"]${attrs}`;
}

/** Opens the page and waits for its drop zone (the page has run its script). */
async function openPage(browser: EngineBrowser): Promise<void> {
  await browser.open(`${proxy.url}/${QUERY}`);
  await browser.waitFor((selector, find) => find(selector) !== null, "[data-testid=drop-zone]", 30_000);
}

function waitForRow(browser: EngineBrowser, selector: string, timeout = 120_000): Promise<void> {
  return browser.waitFor((sel, find) => find(sel) !== null, selector, timeout);
}

/** The row's text in `part` (a class inside the row), trimmed. */
function rowText(browser: EngineBrowser, name: string, part: string): Promise<string> {
  return browser.evaluate(({ selector }, find) => find(selector)?.textContent?.trim() ?? "", { selector: `${rowSelector(name)} ${part}` });
}

/** The names of the copies in this origin's OPFS staging directory (the library's layout, client/staging/opfs.ts). */
function stagedCopies(browser: EngineBrowser): Promise<string[]> {
  return browser.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    let staged: FileSystemDirectoryHandle;
    try {
      staged = await root.getDirectoryHandle("edge-upload-staged");
    } catch {
      return [];
    }
    const names: string[] = [];
    for await (const name of (staged as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    return names;
  });
}

/** Polls `done` (a fact in this process) every 50 ms, for up to a minute. */
async function waitUntil(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`waited a minute for ${done.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The blob the edge serves for a done row, fetched past the proxy: its digest. */
async function servedDigest(blob: string | null): Promise<string> {
  const res = await fetch(new URL(new URL(blob ?? "", proxy.url).pathname, inject("baseUrl")));
  expect(res.status).toBe(200);
  return sha256Digest(new Uint8Array(await res.arrayBuffer()));
}

describe.each(ENGINES)("%s", (engine) => {
  // Bytes of this engine's own: the edge dedupes by digest, so a file another engine (or the
  // engines test) uploaded already would finish early and prove nothing.
  const seed = 1800 + ENGINES.indexOf(engine);
  let profile = "";
  let browser: EngineBrowser | undefined;

  beforeAll(async () => {
    profile = await mkdtemp(join(tmpdir(), `engines-staging-${engine}-`));
  });
  afterAll(async () => {
    await browser?.close();
    proxy.setGate(Number.POSITIVE_INFINITY);
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  test("SIGKILLed mid-upload of a file from the plain input, relaunched on its profile: one click finishes it from the OPFS copy, right blob, copy gone", async () => {
    const name = `${engine}-staged-40mib.bin`;
    const bytes = seededBytes(seed, 40 * MiB + 1234); // not a whole number of 4 MiB buffers: the tail is written from a partly filled one
    const digest = sha256Digest(bytes);
    const path = join(dir, name);
    await writeFile(path, bytes);

    // Session 1: the upload held at GATE bytes by the proxy, the whole file kept, then SIGKILL.
    browser = await launch(engine, { profileDir: profile });
    await openPage(browser);
    const forwardedBefore = proxy.forwarded;
    const patchesBefore = proxy.patches.length;
    proxy.setGate(forwardedBefore + GATE);
    await browser.setFiles(FILE_INPUT, [path]);
    await proxy.waitForForwarded(forwardedBefore + GATE);
    // Hashed and kept whole (the copier runs beside the hasher, so either may end first), still sending.
    await waitForRow(browser, rowSelector(name, `[data-staged="true"][data-state="uploading"]`));
    // The edge has acknowledged the first chunk (the gate holds the second), so the relaunch has an
    // offset to continue from: killed before that answer, the upload rightly starts again at 0.
    await waitUntil(() => proxy.patches.slice(patchesBefore).some((p) => p.status === 204));
    await expect(rowText(browser, name, ".upload__staged")).resolves.toBe("Kept in this browser so it can continue after a crash.");
    const key = (await browser.attribute(rowSelector(name), "data-key")) ?? "";
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    await expect(browser.attribute(rowSelector(name), "data-has-handle")).resolves.toBeNull(); // a plain input's file
    await expect(stagedCopies(browser)).resolves.toEqual([key]);
    await browser.killHard();
    const killed = browser;
    browser = undefined;
    expect(proxy.forwarded - forwardedBefore).toBe(GATE); // killed mid-upload
    await proxy.waitForNoOpenPatch();
    proxy.setGate(Number.POSITIVE_INFINITY);

    // Session 2: the same profile; the row continues from the copy without the file.
    browser = await killed.relaunch();
    await openPage(browser);
    await waitForRow(browser, rowSelector(name, `[data-state="interrupted"][data-reason="reload"][data-staged="true"]`), 30_000);
    await expect(rowText(browser, name, ".upload__message")).resolves.toMatch(/continue from the copy kept in this browser; no need to find the file/);
    // Nothing asks for the file: its Choose button is not shown.
    const chooseShown = await browser.evaluate(
      (sel, find) => {
        const el = find(sel) as HTMLElement | null;
        return el !== null && el.offsetParent !== null;
      },
      rowSelector(name, " button[data-action=choose]"),
    );
    expect(chooseShown).toBe(false);
    const sentBefore = proxy.patchBytes;
    await browser.click(rowSelector(name, " button[data-action=resume]")); // the one click; no file given
    await browser.waitFor((sel, find) => ["done", "failed"].includes(find(sel)?.getAttribute("data-state") ?? ""), rowSelector(name));
    const done = await browser.evaluate((sel, find) => {
      const el = find(sel);
      return {
        state: el?.getAttribute("data-state"),
        source: el?.getAttribute("data-source"),
        digest: el?.getAttribute("data-digest"),
        resumedUploadAt: el?.getAttribute("data-resumed-upload-at"),
        blob: el?.getAttribute("data-blob") ?? null,
        staged: el?.getAttribute("data-staged") ?? null,
      };
    }, rowSelector(name));
    expect(done).toMatchObject({ state: "done", source: "copy", digest, staged: null });
    const resumedUploadAt = Number(done.resumedUploadAt);
    expect(resumedUploadAt).toBeGreaterThan(0); // continued at the edge's offset, not from 0
    expect(proxy.patchBytes - sentBefore).toBe(bytes.length - resumedUploadAt);
    expect(await servedDigest(done.blob)).toBe(digest);
    await expect(stagedCopies(browser)).resolves.toEqual([]); // done: the copy is removed
    console.log(JSON.stringify({ engine, version: browser.version, resumedUploadAt }));
  });
});
