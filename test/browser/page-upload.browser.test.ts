/**
 * The page end to end with the real uploader and edge (the `npm start` stack), through a
 * counting proxy that can hold PATCH bytes so "mid-upload" is a fact, not a timing guess.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { launchChromium } from "../support/chromium.ts";
import {
  type CountingProxy,
  createOpfsFile,
  dropFile,
  newIsolatedPage,
  rowHooks,
  seededBytes,
  sha256Digest,
  startCountingProxy,
  waitForState,
} from "./page-helpers.ts";

const MiB = 1024 * 1024;
const SCREENSHOTS = "test-results/screenshots";
let browser: Browser;
let proxy: CountingProxy;

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  browser = await launchChromium();
  proxy = await startCountingProxy(inject("baseUrl"));
});
afterAll(async () => {
  await browser?.close();
  await proxy?.close();
});

function newPage(): Promise<Page> {
  return newIsolatedPage(browser);
}

async function openPage(query = ""): Promise<Page> {
  const page = await newPage();
  await page.goto(`${proxy.url}/${query}`);
  await page.getByTestId("drop-zone").waitFor();
  return page;
}

async function headUpload(url: string): Promise<Response> {
  return fetch(new URL(url, inject("baseUrl")), { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
}

test("a dropped 64 MiB file ends done with the digest node:crypto computes, and its blob link serves the same bytes", async () => {
  const spec = { name: "dropped-64mib.bin", size: 64 * MiB, seed: 64, lastModified: 1_700_000_000_000 };
  const expected = sha256Digest(seededBytes(spec.seed, spec.size));
  const page = await openPage();
  await page.screenshot({ path: `${SCREENSHOTS}/idle.png`, fullPage: true });

  // Hold the upload after 24 MiB so the mid-upload screenshot shows a half-done row.
  await dropHeldAfter(page, spec, 24 * MiB);
  await page.waitForFunction(
    (name) =>
      Number(
        (document.querySelector("edge-upload")?.shadowRoot ?? document)
          .querySelector(`[data-testid=upload][data-name="${name}"]`)
          ?.getAttribute("data-uploaded"),
      ) >=
      16 * 1024 * 1024,
    spec.name,
  );
  const mid = await rowHooks(page, spec.name);
  expect(mid.state).toBe("uploading");
  expect(mid.digest).toBe(expected); // 64 MiB <= hashFirst: hashed before the upload was created
  await page.screenshot({ path: `${SCREENSHOTS}/mid-upload.png`, fullPage: true });
  proxy.setGate(Number.POSITIVE_INFINITY);

  await waitForState(page, spec.name, ["done", "failed"]);
  const done = await rowHooks(page, spec.name);
  expect(done).toMatchObject({ state: "done", size: String(spec.size), hashed: String(spec.size), uploaded: String(spec.size), digest: expected });
  expect(done.resumedHashAt).toBeNull(); // a fresh upload
  expect(done.resumedUploadAt).toBeNull();
  expect(new URL(done.blob ?? "", proxy.url).pathname).toBe(`/blobs/${expected}`);
  const link = await page.getByTestId("upload").getByRole("link").getAttribute("href");
  expect(link).toBe(done.blob);
  const blob = await fetch(new URL(new URL(link ?? "", proxy.url).pathname, inject("baseUrl")));
  expect(blob.status).toBe(200);
  expect(sha256Digest(new Uint8Array(await blob.arrayBuffer()))).toBe(expected);
  await page.screenshot({ path: `${SCREENSHOTS}/done.png`, fullPage: true });
  await page.close();
});

/*
 * A file from disk through the file input (the test hook), as a person's file is. How long the
 * main thread is busy meanwhile is a speed, measured by `npm run bench` (item 2), not asserted here.
 */
test("a 64 MiB file chosen from disk through the file input ends done with the digest node:crypto computes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "page-upload-"));
  const path = join(dir, "from-disk.bin");
  const bytes = seededBytes(65, 64 * MiB);
  await writeFile(path, bytes);
  const page = await openPage();
  await page.getByTestId("file-input").setInputFiles(path);
  await waitForState(page, "from-disk.bin", ["done", "failed"]);
  const done = await rowHooks(page, "from-disk.bin");
  expect(done.state).toBe("done");
  expect(done.digest).toBe(sha256Digest(bytes));
  await page.close();
  await rm(dir, { recursive: true, force: true });
});

/** Drops `file` with the proxy holding what follows its next `bytes`, once those passed: its row. */
async function dropHeldAfter(page: Page, file: Parameters<typeof dropFile>[1], bytes: number) {
  const start = proxy.forwarded;
  proxy.setGate(start + bytes);
  await dropFile(page, file);
  await proxy.waitForForwarded(start + bytes);
  return page.locator(`[data-testid=upload][data-name="${file.name}"]`);
}

test("pause stops sending and resume finishes the upload; cancel removes it on the edge (HEAD 404)", async () => {
  // 8 MiB chunks: a 24 MiB file takes three PATCHes, so a pause lands between them.
  const page = await openPage("?chunk=8MiB");
  const a = { name: "pause-me.bin", size: 24 * MiB, seed: 11, lastModified: 1_700_000_000_001 };
  const row = await dropHeldAfter(page, a, 10 * MiB);
  await row.locator("[data-action=pause]").click();
  await waitForState(page, a.name, ["paused"]);
  await page.locator(`[data-testid=upload][data-name="${a.name}"][data-upload-url]`).waitFor();
  const paused = await rowHooks(page, a.name);
  const url = paused.uploadUrl ?? "";
  expect(url).toMatch(/\/files\//);
  // Bytes already on the wire when the person paused still arrive: let them through, wait for
  // the cut-off request to end, then watch for a second. Nothing new may be sent meanwhile.
  proxy.setGate(Number.POSITIVE_INFINITY);
  await proxy.waitForNoOpenPatch();
  const patchesAtPause = proxy.patches.length;
  const offsetAtPause = (await headUpload(url)).headers.get("upload-offset");
  expect(Number(offsetAtPause)).toBeLessThan(a.size);
  await page.waitForTimeout(1000);
  expect(proxy.patches.length).toBe(patchesAtPause);
  expect((await headUpload(url)).headers.get("upload-offset")).toBe(offsetAtPause);
  await expect(row.getAttribute("data-state")).resolves.toBe("paused");

  await row.locator("[data-action=resume]").click();
  await waitForState(page, a.name, ["done", "failed"]);
  const done = await rowHooks(page, a.name);
  expect(done.state).toBe("done");
  expect(done.digest).toBe(sha256Digest(seededBytes(a.seed, a.size)));

  const b = { name: "cancel-me.bin", size: 24 * MiB, seed: 12, lastModified: 1_700_000_000_002 };
  const rowB = await dropHeldAfter(page, b, 10 * MiB);
  await page.locator(`[data-testid=upload][data-name="${b.name}"][data-upload-url]`).waitFor();
  const urlB = (await rowB.getAttribute("data-upload-url")) ?? "";
  expect((await headUpload(urlB)).status).toBe(200);
  await rowB.locator("[data-action=cancel]").click();
  proxy.setGate(Number.POSITIVE_INFINITY);
  await rowB.waitFor({ state: "detached" });
  expect((await headUpload(urlB)).status).toBe(404);
  await expect(page.locator("#announcer").innerText()).resolves.toContain(`${b.name}: Cancelled`);
  await page.close();
});

test("after a reload, one click on Resume continues an upload whose file handle was kept (OPFS), with no picking", async () => {
  const spec = { name: "kept-handle.bin", size: 24 * MiB, seed: 13, lastModified: 0 };
  const page = await newPage();
  // The File System Access picker hands out the OPFS file's handle and counts its calls.
  await page.addInitScript(() => {
    const w = window as unknown as { __pickerCalls: number; __opfsHandle?: unknown; showOpenFilePicker: () => Promise<unknown[]> };
    w.__pickerCalls = 0;
    w.showOpenFilePicker = async () => {
      w.__pickerCalls++;
      return w.__opfsHandle ? [w.__opfsHandle] : [];
    };
  });
  await page.goto(`${proxy.url}/?chunk=8MiB`);
  await createOpfsFile(page, spec);
  const start = proxy.forwarded;
  proxy.setGate(start + 10 * MiB);
  await page.getByTestId("drop-zone").click(); // opens the (stubbed) picker
  await proxy.waitForForwarded(start + 10 * MiB);
  await page.locator(`[data-testid=upload][data-name="${spec.name}"][data-has-handle]`).waitFor();

  await page.reload();
  proxy.setGate(Number.POSITIVE_INFINITY);
  await waitForState(page, spec.name, ["interrupted"]);
  const resumeAll = page.locator("#resume-all");
  await expect(resumeAll.innerText()).resolves.toBe("Resume 1 upload");
  await resumeAll.click();
  await waitForState(page, spec.name, ["done", "failed"]);
  const done = await rowHooks(page, spec.name);
  expect(done.state).toBe("done");
  expect(done.digest).toBe(sha256Digest(seededBytes(spec.seed, spec.size)));
  expect(Number(done.resumedUploadAt)).toBeGreaterThan(0);
  // Nothing was picked after the reload: the kept handle was re-opened.
  await expect(page.evaluate(() => (window as unknown as { __pickerCalls: number }).__pickerCalls)).resolves.toBe(0);
  await page.close();
});
