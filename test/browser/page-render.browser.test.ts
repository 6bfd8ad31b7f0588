/**
 * The page's UI (the <edge-upload> element, in its harness page) with a stand-in uploader (no edge involved): rows and test hooks from
 * snapshots, the interrupted list after a reload, buttons, keyboard and drop input, and layout
 * on a 360 px phone screen. The real uploader end to end is in page-upload and page-crash.
 */
import { mkdir } from "node:fs/promises";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { UploadSnapshot } from "../../client/types.ts";
import type { ElementHarness } from "../pages/element-harness.ts";
import { launchChromium } from "../support/chromium.ts";
import { dropFile, newIsolatedPage } from "./page-helpers.ts";

const SCREENSHOTS = "test-results/screenshots";
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
  await mkdir(SCREENSHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

const MiB = 1024 * 1024;
const progress = (bytes: number, total: number, bytesPerSecond = 0) => ({
  bytes,
  total,
  bytesPerSecond,
  etaSeconds: bytesPerSecond > 0 ? (total - bytes) / bytesPerSecond : undefined,
});
const DIGEST = `sha256:${"ab".repeat(32)}` as const;

function snap(key: string, name: string, state: UploadSnapshot["state"], extra: Partial<UploadSnapshot> = {}): UploadSnapshot {
  const size = 64 * MiB;
  return {
    key,
    name,
    size,
    type: "application/octet-stream",
    lastModified: 1_700_000_000_000,
    state,
    hash: progress(size, size),
    transfer: progress(0, size),
    hasHandle: false,
    counters: { hashRead: 0, sent: 0 },
    ...extra,
  };
}

type W = { elementHarness: ElementHarness };

/**
 * Opens the element harness (test/pages/element-harness.html, built into the test server's
 * build: the page's layout and stylesheet) with <edge-upload> on a stand-in uploader whose
 * snapshots the test sets.
 */
async function openWithFakeUploader(viewport = { width: 1000, height: 800 }, initScript?: () => void): Promise<Page> {
  const page = await newIsolatedPage(browser, viewport);
  if (initScript) await page.addInitScript(initScript);
  await page.goto(`${inject("baseUrl")}/test/pages/element-harness.html`);
  await page.waitForFunction(() => "elementHarness" in window);
  await page.evaluate(() => (window as unknown as W).elementHarness.mountStandIn());
  await page.getByTestId("drop-zone").waitFor();
  return page;
}

async function setSnapshots(page: Page, snapshots: UploadSnapshot[]): Promise<void> {
  await page.evaluate((s) => (window as unknown as W).elementHarness.setSnapshots(s), snapshots);
}

const calls = (page: Page) => page.evaluate(() => (window as unknown as W).elementHarness.calls);
const added = (page: Page) => page.evaluate(() => (window as unknown as W).elementHarness.added);
const addedCount = (page: Page, n: number) => page.waitForFunction((n) => (window as unknown as W).elementHarness.added.length === n, n);

test("rows carry the test hooks and labelled progress bars; busy and queued map onto the hook vocabulary", async () => {
  const page = await openWithFakeUploader();
  await setSnapshots(page, [
    snap("k1", "uploading.bin", { kind: "uploading" }, { transfer: progress(20 * MiB, 64 * MiB, 8 * MiB), digest: DIGEST, uploadUrl: "/files/u1" }),
    snap("k2", "other-tab.bin", { kind: "busy", reason: "other-tab" }),
    snap("k3", "waiting.bin", { kind: "queued" }, { hash: progress(0, 64 * MiB) }),
    snap(
      "k4",
      "done.bin",
      { kind: "done", digest: DIGEST, blobUrl: `/blobs/${DIGEST}`, bytesSent: 64 * MiB },
      { digest: DIGEST, transfer: progress(64 * MiB, 64 * MiB) },
    ),
    snap("k5", "failed.bin", { kind: "failed", error: { code: "AUTH", message: "", retryable: false } }),
    snap("k6", "cancelled.bin", { kind: "cancelled" }),
  ]);
  const rows = page.getByTestId("upload");
  // A cancelled upload has no row: it is gone for the person (and on the edge).
  await expect(rows.count()).resolves.toBe(5);

  const first = rows.nth(0);
  const attrs = await first.evaluate((el) => Object.fromEntries(Array.from(el.attributes, (a) => [a.name, a.value])));
  expect(attrs).toMatchObject({
    "data-name": "uploading.bin",
    "data-size": String(64 * MiB),
    "data-state": "uploading",
    "data-hashed": String(64 * MiB),
    "data-uploaded": String(20 * MiB),
    "data-digest": DIGEST,
    "data-upload-url": "/files/u1",
  });
  // A fresh upload has no resumed-at offsets and no blob yet.
  expect(attrs).not.toHaveProperty("data-resumed-hash-at");
  expect(attrs).not.toHaveProperty("data-resumed-upload-at");
  expect(attrs).not.toHaveProperty("data-blob");
  // Both bars are <progress> elements with an accessible name; speed and time left are shown.
  await expect(first.getByRole("progressbar", { name: "Hashing" }).evaluate((p: HTMLProgressElement) => p.value / p.max)).resolves.toBe(1);
  await expect(first.getByRole("progressbar", { name: "Uploading" }).evaluate((p: HTMLProgressElement) => p.value)).resolves.toBe(20 * MiB);
  await expect(first.innerText()).resolves.toMatch(/31% · 8\.0 MiB\/s · 6 s left/);
  await expect(first.locator("[data-action=pause]").isVisible()).resolves.toBe(true);
  await expect(first.locator("[data-action=cancel]").isVisible()).resolves.toBe(true);
  await expect(first.locator("[data-action=resume]").isVisible()).resolves.toBe(false);

  await expect(rows.nth(1).getAttribute("data-state")).resolves.toBe("paused");
  await expect(rows.nth(1).getAttribute("data-reason")).resolves.toBe("other-tab");
  await expect(rows.nth(2).getAttribute("data-state")).resolves.toBe("hashing");
  await expect(rows.nth(2).getAttribute("data-reason")).resolves.toBe("queued");

  const done = rows.nth(3);
  await expect(done.getAttribute("data-state")).resolves.toBe("done");
  await expect(done.getAttribute("data-blob")).resolves.toBe(`/blobs/${DIGEST}`);
  await expect(done.locator("code").innerText()).resolves.toBe(DIGEST);
  await expect(done.getByRole("link").getAttribute("href")).resolves.toBe(`/blobs/${DIGEST}`);

  const failed = rows.nth(4);
  await expect(failed.getAttribute("data-state")).resolves.toBe("failed");
  // Without a message from the library, the page's own words say why and what to do.
  await expect(failed.getByRole("alert").innerText()).resolves.toMatch(/did not accept.*ask for a new one/s);
  await page.close();
});

test("row buttons call pause, resume and cancel for their own upload, and state changes are announced", async () => {
  const page = await openWithFakeUploader();
  await setSnapshots(page, [snap("a", "a.bin", { kind: "uploading" }), snap("b", "b.bin", { kind: "paused" })]);
  await expect(page.locator("#announcer").innerText()).resolves.toBe("a.bin: Uploading. b.bin: Paused");
  const b = page.locator("[data-testid=upload][data-name='b.bin']");
  await b.locator("[data-action=resume]").click();
  await page.locator("[data-testid=upload][data-name='a.bin'] [data-action=pause]").click();
  // Keyboard: Tab to b's cancel button and press Enter.
  await b.locator("[data-action=cancel]").focus();
  await page.keyboard.press("Enter");
  await expect(calls(page)).resolves.toEqual(["resume:b", "pause:a", "cancel:b"]);
  await setSnapshots(page, [snap("a", "a.bin", { kind: "paused" }), snap("b", "b.bin", { kind: "paused" })]);
  await expect(page.locator("#announcer").innerText()).resolves.toBe("a.bin: Paused");
  await page.close();
});

test("after a reload, interrupted uploads are listed apart: one click resumes those with a file handle, the others ask for the file", async () => {
  const page = await openWithFakeUploader();
  await setSnapshots(page, [
    snap("h", "kept-handle.bin", { kind: "interrupted", reason: "needs-permission" }, { hasHandle: true, transfer: progress(24 * MiB, 64 * MiB) }),
    snap("f", "needs-file.bin", { kind: "interrupted", reason: "needs-file" }, { transfer: progress(8 * MiB, 64 * MiB) }),
    snap("r", "running.bin", { kind: "uploading" }),
  ]);
  const section = page.locator("#interrupted");
  await expect(section.isVisible()).resolves.toBe(true);
  await expect(section.getByTestId("upload").count()).resolves.toBe(2);
  await expect(section.locator("#interrupted-summary").innerText()).resolves.toMatch(
    /2 uploads were interrupted.*1 can continue with one click.*1 needs the same file/s,
  );
  const needsFile = section.locator("[data-name='needs-file.bin']");
  await expect(needsFile.getAttribute("data-state")).resolves.toBe("interrupted");
  await expect(needsFile.innerText()).resolves.toMatch(/Drop or choose the same file again/);
  await expect(needsFile.locator("[data-action=resume]").isVisible()).resolves.toBe(false);
  await expect(needsFile.locator("[data-action=choose]").isVisible()).resolves.toBe(true);
  await expect(section.locator("[data-name='kept-handle.bin'] [data-action=resume]").isVisible()).resolves.toBe(true);
  await page.locator("#resume-all").click();
  await expect(calls(page)).resolves.toEqual(["resume:h"]);
  await page.screenshot({ path: `${SCREENSHOTS}/resume-list-stand-in.png`, fullPage: true });
  await page.close();
});

test("the drop zone takes a real drop and opens the picker from the keyboard (Enter and Space)", async () => {
  // Record File System Access picker calls instead of opening a native dialog.
  const page = await openWithFakeUploader(undefined, () => {
    const w = window as unknown as { __pickerCalls: number; showOpenFilePicker: () => Promise<never[]> };
    w.__pickerCalls = 0;
    w.showOpenFilePicker = async () => {
      w.__pickerCalls++;
      return [];
    };
  });
  await dropFile(page, { name: "dropped.bin", size: 1000, seed: 7, lastModified: 1_700_000_000_000 });
  await addedCount(page, 1);
  await expect(added(page)).resolves.toEqual([{ name: "dropped.bin", size: 1000, kind: "File" }]);
  const zone = page.getByTestId("drop-zone");
  await page.keyboard.press("Tab"); // skip link
  await page.keyboard.press("Tab");
  // Focus inside the element's shadow root: the root's activeElement (the document's is the host).
  await expect(zone.evaluate((el) => el === (el.getRootNode() as ShadowRoot).activeElement)).resolves.toBe(true);
  // The focus ring is visible: an outline is drawn.
  await expect(zone.evaluate((el) => getComputedStyle(el).outlineStyle)).resolves.toBe("solid");
  await page.keyboard.press("Enter");
  await page.keyboard.press(" ");
  await expect(page.evaluate(() => (window as unknown as { __pickerCalls: number }).__pickerCalls)).resolves.toBe(2);
  await page.close();
});

test("without the File System Access picker, Enter on the drop zone opens the file input's chooser", async () => {
  const page = await openWithFakeUploader(undefined, () => {
    delete (window as unknown as { showOpenFilePicker?: unknown }).showOpenFilePicker;
  });
  const chooser = page.waitForEvent("filechooser");
  await page.getByTestId("drop-zone").focus();
  await page.keyboard.press("Enter");
  const fc = await chooser;
  expect(fc.isMultiple()).toBe(true);
  await fc.setFiles({ name: "picked.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
  await addedCount(page, 1);
  await expect(added(page)).resolves.toEqual([{ name: "picked.txt", size: 5, kind: "File" }]);
  await page.close();
});

test("Choose a folder hands every file below it, nested ones included, to the uploader as file handles", async () => {
  // The directory picker returns a folder built in the origin private file system.
  const page = await openWithFakeUploader(undefined, () => {
    (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = async () => {
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle("picked", { create: true });
      const nested = await dir.getDirectoryHandle("nested", { create: true });
      for (const [parent, name] of [
        [dir, "a.txt"],
        [nested, "b.txt"],
      ] as const) {
        const writable = await (await parent.getFileHandle(name, { create: true })).createWritable();
        await writable.write(name);
        await writable.close();
      }
      return dir;
    };
  });
  await page.getByRole("button", { name: "Choose a folder…" }).click();
  await addedCount(page, 2);
  expect((await added(page)).map((a) => `${a.name} ${a.kind}`).sort()).toEqual(["a.txt handle", "b.txt handle"]);
  await page.close();
});

test("on a 360 px wide screen nothing overflows sideways, long names and digests included", async () => {
  const page = await openWithFakeUploader({ width: 360, height: 780 });
  await setSnapshots(page, [
    snap("l", `a-very-long-file-name-without-spaces-${"x".repeat(80)}.tar.gz`, { kind: "uploading" }, { transfer: progress(30 * MiB, 64 * MiB, 5 * MiB) }),
    snap("d", "done.bin", { kind: "done", digest: DIGEST, blobUrl: `/blobs/${DIGEST}`, bytesSent: 64 * MiB }),
    snap("i", "interrupted.bin", { kind: "interrupted", reason: "needs-file" }),
  ]);
  await expect(page.evaluate(() => document.documentElement.scrollWidth)).resolves.toBeLessThanOrEqual(360);
  await page.screenshot({ path: `${SCREENSHOTS}/phone-360.png`, fullPage: true });
  await page.close();
});
