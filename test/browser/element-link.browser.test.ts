/**
 * The element's "Open the uploaded file" link on an edge that requires tokens (UPLOAD_SECRET, no
 * anonymous uploads): a link cannot carry an Authorization header, so the row's href must be the
 * signed `Upload-Blob-Url` the edge answered the finish with. Opened in a fresh browser context
 * (no token, no storage) it downloads the file; with a tampered signature it is refused and
 * serves nothing; the plain `/blobs/<digest>` path (what the link was before) needs the token.
 *
 * Chromium only: a second, fresh context of the same browser and its download events are
 * Playwright's; the link's href is the same string in every engine (set from the same snapshot).
 * The edge side of the links (TTL, expiry, other namespaces) is test/workerd/blob-urls.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { signToken } from "../../edge/server.ts";
import type { ElementHarness, RecordedEvent } from "../pages/element-harness.ts";
import { launchChromium } from "../support/chromium.ts";
import { seededBytes } from "../support/seeded.ts";
import { type ServerProcess, startServer } from "../support/server-process.ts";
import { newIsolatedPage, sha256Digest } from "./page-helpers.ts";

type W = { elementHarness: ElementHarness };
const MiB = 1024 * 1024;
const SECRET = randomBytes(24).toString("base64url");

let browser: Browser;
let server: ServerProcess;
let stateDir = "";

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "element-link-"));
  // The stack's own build (with the harness pages), served by a second edge that requires tokens.
  [server, browser] = await Promise.all([
    startServer({
      stateDir,
      outDir: join(inject("stateDir"), "build"),
      build: false,
      env: { UPLOAD_SECRET: SECRET, ALLOW_ANONYMOUS: "false" },
    }),
    launchChromium(),
  ]);
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

test("with a token, the row's Open link is the signed Upload-Blob-Url: a fresh context without the token downloads the bytes; a tampered signature gets 403 and no bytes", async () => {
  const size = 2 * MiB + 17;
  const bytes = seededBytes(size, 61);
  const expected = sha256Digest(bytes);
  const token = await signToken(SECRET, { namespace: "team-links", ttl: 600 });

  const page = await newIsolatedPage(browser);
  await page.goto(`${server.baseUrl}/test/pages/element-harness.html`);
  await page.waitForFunction(() => "elementHarness" in window);
  await page.evaluate(
    ({ size, token }) =>
      (window as unknown as W).elementHarness.mountRealWithFile({ endpoint: "/files", token, "chunk-size": "1MiB" }, { name: "linked.bin", size, seed: 61 }),
    { size, token },
  );
  await page.waitForFunction(() => (window as unknown as W).elementHarness.events.some((e) => e.type === "upload-done" || e.type === "upload-error"), null, {
    timeout: 60_000,
    polling: 100,
  });
  const events = await page.evaluate(() => (window as unknown as W).elementHarness.events);
  const done = events.find((e: RecordedEvent) => e.type === "upload-done");
  expect(done?.detail, JSON.stringify(events.filter((e) => e.type === "upload-error"))).toMatchObject({ name: "linked.bin", digest: expected });
  const href = await page.locator('[data-testid=upload][data-name="linked.bin"] [part=link]').getAttribute("href");
  await page.close();

  // The link is the edge's signed one, for the token's namespace, and the event carries the same.
  const link = new URL(href ?? "");
  expect(link.origin + link.pathname).toBe(`${server.baseUrl}/blobs/${expected}`);
  expect(link.searchParams.get("ns")).toBe("team-links");
  expect(link.searchParams.get("sig")).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(done?.detail.blobUrl).toBe(href);

  // A fresh context: no token, no cookies, no storage of the page that uploaded.
  const fresh = await browser.newContext({ acceptDownloads: true });
  try {
    const tab = await fresh.newPage();
    const authorizations: (string | undefined)[] = [];
    tab.on("request", (req) => authorizations.push(req.headers().authorization));
    // The blob is served as an attachment, so opening the link is a download.
    const [download] = await Promise.all([tab.waitForEvent("download"), tab.goto(link.href).catch(() => null)]);
    const path = await download.path();
    expect(sha256Digest(new Uint8Array(await readFile(path)))).toBe(expected);
    expect(download.suggestedFilename()).toBe("linked.bin");
    expect(authorizations).toEqual([undefined]);

    // The signature's first character changed (not its last: base64url's 43rd character carries
    // 2 padding bits, so some changes there decode to the same MAC): refused, nothing served.
    const sig = link.searchParams.get("sig") ?? "";
    const tampered = new URL(link);
    tampered.searchParams.set("sig", `${sig.startsWith("A") ? "B" : "A"}${sig.slice(1)}`);
    const refused = await tab.goto(tampered.href);
    expect([403, 404]).toContain(refused?.status());
    const body = (await refused?.body()) ?? Buffer.alloc(0);
    expect(body.length).toBeLessThan(1024);
    expect(refused?.headers()["content-disposition"]).toBeUndefined();

    // What the link used to be, the plain blob path: without the token, not served.
    const plain = await tab.goto(`${server.baseUrl}/blobs/${expected}`);
    expect(plain?.status()).toBe(401);
  } finally {
    await fresh.close();
  }
});
