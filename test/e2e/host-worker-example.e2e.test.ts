/**
 * examples/host-worker, as its README says to use it, outside this repo: a copy in a temp
 * directory with the packed tarball installed (test/support/package-tarball.ts: the same
 * tarball as package-consumer's, packed once per run; offline), then
 *   1. `vite build` bundles its page with `edge-upload/element` (and the hasher workers), both of
 *      its TypeScript programs type-check against the shipped .d.ts, and `wrangler deploy
 *      --dry-run --outdir` builds the Worker;
 *   2. that dry-run output runs in workerd (Miniflare, as `npm start` serves the repo's build,
 *      scripts/serve-build.mjs) with the example's wrangler.jsonc bindings: a file uploaded
 *      through /uploads with the example's own sign-in (a signed session cookie, its `authorize`)
 *      ends with the right digest, its signed link opens without the cookie, another user cannot
 *      read it, and the example's queue consumer (createUploadEventConsumer) records the
 *      upload.completed event the edge sent to its UPLOAD_EVENTS queue;
 *   3. its page in Chromium: sign in with its form, drop a file on its `<edge-upload>`, and the
 *      page lists the upload as the queue consumer recorded it.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { serveBuild } from "../../scripts/serve-build.mjs";
import { dropFile, newIsolatedPage, seededBytes as pageSeededBytes, sha256Digest } from "../browser/page-helpers.ts";
import { launchChromium } from "../support/chromium.ts";
import { installTarball, packedTarball, repo } from "../support/package-tarball.ts";
import { seededBytes } from "../support/seeded.ts";
import { freePort } from "../support/server-process.ts";

const run = promisify(execFile);
const EXAMPLE = join(repo, "examples", "host-worker");
/** What a checkout of the example holds; its build outputs and installs are left behind. */
const SKIP = new Set(["node_modules", "public", "dist", ".wrangler"]);
/** Quiet, offline wrangler: no telemetry, no update check. */
const WRANGLER_ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false", NO_UPDATE_NOTIFIER: "1" };

let work = "";
let example = "";
let outDir = "";
/** The dry-run output served in workerd, started by the first test that needs it. */
let served: { base: string; stop: () => Promise<void> } | undefined;

beforeAll(async () => {
  const tarball = await packedTarball(inject("stateDir"));
  work = await mkdtemp(join(tmpdir(), "edge-upload-host-worker-"));
  example = join(work, "host-worker");
  outDir = join(work, "worker-out");
  await cp(EXAMPLE, example, { recursive: true, filter: (src) => !SKIP.has(src.slice(EXAMPLE.length + 1).split("/")[0] ?? "") && !src.endsWith(".tgz") });
  await installTarball(example, tarball);
}, 300_000);

afterAll(async () => {
  await served?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const bin = (name: string) => join(example, "node_modules", ...name.split("/"));

test("the example's page bundles edge-upload/element with Vite, it type-checks against the shipped .d.ts, and `wrangler deploy --dry-run` builds its Worker", async () => {
  // Independent of each other: the page's bundle and the two type-checks, side by side.
  const tsc = bin("typescript/bin/tsc");
  await Promise.all([
    run(process.execPath, [bin("vite/bin/vite.js"), "build", "--logLevel", "warn"], { cwd: example }),
    run(process.execPath, [tsc, "--noEmit"], { cwd: example }),
    run(process.execPath, [tsc, "--noEmit", "-p", "page"], { cwd: example }),
  ]);
  const html = await readFile(join(example, "public", "index.html"), "utf8");
  expect(html).toContain('<edge-upload endpoint="/uploads/files"');
  const assets = await readdir(join(example, "public", "assets"));
  expect(assets.some((name) => name.startsWith("hasher.worker"))).toBe(true);

  const dry = await run(process.execPath, [bin("wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", outDir], {
    cwd: example,
    env: WRANGLER_ENV,
    maxBuffer: 16 * 1024 * 1024,
  });
  expect(dry.stdout).toMatch(/env\.UPLOAD_EVENTS \(host-worker-upload-events\)\s+Queue/);
  expect(dry.stdout).toMatch(/env\.UPLOADS \(UploadObject\)\s+Durable Object/);
  const built = await readdir(outDir);
  expect(built).toContain("index.js");
  expect(built.some((name) => name.endsWith(".wasm"))).toBe(true); // the edge's SHA-256, bundled as a module
});

/** The example's wrangler.jsonc pointed at the dry-run output (no bundling again) and the built page. */
async function configForBuild(): Promise<string> {
  const source = join(example, "wrangler.jsonc");
  const parsed = ts.parseConfigFileTextToJson(source, await readFile(source, "utf8"));
  if (parsed.error) throw new Error(`wrangler.jsonc: ${String(parsed.error.messageText)}`);
  const { $schema: _schema, ...config } = parsed.config as Record<string, unknown> & { assets: Record<string, unknown> };
  const path = join(outDir, "wrangler.json");
  await writeFile(path, JSON.stringify({ ...config, main: "index.js", no_bundle: true, assets: { ...config.assets, directory: join(example, "public") } }));
  return path;
}

/** Cookie header of a session the example's sign-in gave `name`. */
async function signIn(base: string, name: string): Promise<string> {
  const res = await fetch(`${base}/api/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
  expect(res.status).toBe(204);
  const cookie = res.headers.get("set-cookie")?.split(";")[0];
  if (!cookie) throw new Error("no session cookie");
  return cookie;
}

const tus = (cookie: string | undefined, extra: Record<string, string> = {}) => ({ "Tus-Resumable": "1.0.0", ...(cookie ? { Cookie: cookie } : {}), ...extra });

interface Recorded {
  type: string;
  id: string;
  namespace: string;
  digest: string;
  size: number;
  metadata: Record<string, string>;
  link: string;
}

async function serveExample(): Promise<string> {
  if (!served) {
    const port = await freePort();
    const stop = await serveBuild({
      configPath: await configForBuild(),
      host: "127.0.0.1",
      port,
      stateDir: join(work, "state"),
      vars: { UPLOAD_SECRET: "example-upload-secret", SESSION_SECRET: "example-session-secret" },
      quiet: true,
    });
    served = { base: `http://127.0.0.1:${port}`, stop };
  }
  return served.base;
}

test("its dry-run output in workerd: an upload through /uploads with the example's sign-in is stored and linked, and its queue consumer records upload.completed", async () => {
  const base = await serveExample();
  const page = await fetch(`${base}/`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("<edge-upload");

  // The example's authorize: no session, no upload; a forged cookie neither.
  const data = seededBytes(3 * 1024 * 1024 + 11, 71);
  const digest = sha256Digest(data);
  const length = { "Upload-Length": String(data.length), "Upload-Metadata": `filename ${btoa("report.bin")}` };
  expect((await fetch(`${base}/uploads/files`, { method: "POST", headers: tus(undefined, length) })).status).toBe(401);
  expect((await fetch(`${base}/uploads/files`, { method: "POST", headers: tus("session=alice.forged", length) })).status).toBe(401);

  const alice = await signIn(base, "alice");
  const created = await fetch(`${base}/uploads/files`, { method: "POST", headers: tus(alice, length) });
  expect(created.status).toBe(201);
  const location = created.headers.get("location") ?? "";
  expect(location).toMatch(/^\/uploads\/files\/[0-9a-f]{64}$/);
  const id = location.split("/").pop() ?? "";

  let last: Response | undefined;
  const chunk = 2 * 1024 * 1024;
  for (let offset = 0; offset < data.length; offset += chunk) {
    last = await fetch(new URL(location, base), {
      method: "PATCH",
      headers: tus(alice, { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" }),
      body: data.subarray(offset, offset + chunk),
    });
    expect(last.status).toBe(204);
  }
  expect(last?.headers.get("content-location")).toBe(`/uploads/blobs/${digest}`);

  // The signed link opens without the session; the plain path needs it, and only alice's opens it.
  const link = last?.headers.get("upload-blob-url") ?? "";
  expect(link).toMatch(new RegExp(`^/uploads/blobs/${digest}\\?ns=users%2Falice&`));
  expect(sha256Digest(new Uint8Array(await (await fetch(new URL(link, base))).arrayBuffer()))).toBe(digest);
  expect((await fetch(`${base}/uploads/blobs/${digest}`)).status).toBe(401);
  expect((await fetch(`${base}/uploads/blobs/${digest}`, { headers: { Cookie: alice } })).status).toBe(200);
  const bob = await signIn(base, "bob");
  expect((await fetch(`${base}/uploads/blobs/${digest}`, { headers: { Cookie: bob } })).status).toBe(404);

  // The event went from the upload's Durable Object to UPLOAD_EVENTS, and the example's consumer
  // recorded it in KV, where the example's /api/uploads lists it (with a signBlobUrl link).
  let recorded: Recorded[] = [];
  for (let i = 0; i < 150 && !recorded.some((r) => r.id === id); i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 200));
    recorded = (await (await fetch(`${base}/api/uploads`, { headers: { Cookie: alice } })).json()) as Recorded[];
  }
  const event = recorded.find((r) => r.id === id);
  expect(event).toMatchObject({ type: "upload.completed", id, namespace: "users/alice", digest, size: data.length, metadata: { filename: "report.bin" } });
  expect(sha256Digest(new Uint8Array(await (await fetch(event?.link ?? "")).arrayBuffer()))).toBe(digest);
  expect(await (await fetch(`${base}/api/uploads`, { headers: { Cookie: bob } })).json()).toEqual([]);
});

test("its page in Chromium: signed in through the form, a file dropped on its <edge-upload> is uploaded with the session cookie and appears in the list the queue consumer recorded", async () => {
  const base = await serveExample();
  const browser = await launchChromium();
  try {
    const page = await newIsolatedPage(browser);
    await page.goto(`${base}/`);
    await page.getByLabel("Your name").fill("carol");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForFunction(() => document.querySelector("#who")?.textContent === "signed in as carol");
    const spec = { name: "from-the-page.bin", size: 2 * 1024 * 1024 + 9, seed: 72, lastModified: 1_700_000_000_072 };
    await dropFile(page, spec);
    // The page lists what /api/uploads returns: the consumer's record, with a signBlobUrl link.
    const item = page.locator("#recorded li", { hasText: spec.name });
    await item.waitFor({ timeout: 60_000 });
    const link = await item.locator("a").getAttribute("href");
    const digest = sha256Digest(pageSeededBytes(spec.seed, spec.size));
    await expect(item.textContent()).resolves.toContain(digest);
    expect(new URL(link ?? "").searchParams.get("ns")).toBe("users/carol");
    expect(sha256Digest(new Uint8Array(await (await fetch(link ?? "")).arrayBuffer()))).toBe(digest);
  } finally {
    await browser.close();
  }
});
