#!/usr/bin/env node
/**
 * Builds what `npm pack` ships (run by `prepack`): compiled ESM + .d.ts in dist/pkg for the
 * package's entry points (package.json "exports"):
 *   edge-upload          client/index.ts            browser library
 *   edge-upload/node     client/node.ts, cli.ts     Node uploader and the CLI (bin/edge-upload.js)
 *   edge-upload/element  client/element/index.ts    <edge-upload>
 *   edge-upload/server   edge/server.ts             tokens, signed blob URLs, webhooks (host backends)
 *   edge-upload/worker   edge/worker.ts             createUploadApp for a host Worker
 *
 * Why tsc and no bundler: the package stays one module per source file, so a consumer's bundler
 * shares hono, tus-js-client and hash-wasm with the host app and drops what it does not import.
 * Two things tsc leaves as they are are fixed afterwards:
 * - `new Worker(new URL("./hasher.worker.ts", import.meta.url))`: the URL is a string, not an
 *   import, so tsc keeps `.ts`; it is rewritten to the emitted `.js`, the form bundlers (Vite,
 *   webpack 5, esbuild with its plugin, Parcel) recognise and bundle as a worker;
 * - the edge imports hash-wasm's SHA-256 binary as a static `.wasm` module (workerd forbids
 *   compiling Wasm at run time): the file is copied beside the code; wrangler bundles it.
 * The edge compiles apart (edge/tsconfig.json: Workers types, no DOM), only the entries that exist.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureGenerated } from "./generate.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "pkg");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

function run(args) {
  const result = spawnSync(process.execPath, [tsc, ...args], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

await ensureGenerated();
rmSync(out, { recursive: true, force: true });
run(["-p", "tsconfig.build.json"]);

// The edge's package entries, compiled with the edge's own settings (a generated config: an
// entry not written yet is left out rather than failing the build).
const edgeEntries = ["worker.ts", "server.ts"].filter((name) => existsSync(join(root, "edge", name)));
if (edgeEntries.length > 0) {
  const config = join(root, "edge", ".tsconfig.package.json");
  writeFileSync(
    config,
    JSON.stringify({
      extends: "./tsconfig.json",
      compilerOptions: {
        noEmit: false,
        declaration: true,
        rewriteRelativeImportExtensions: true,
        rootDir: "..",
        outDir: "../dist/pkg",
        types: ["@cloudflare/workers-types"],
      },
      files: ["./wasm.d.ts", ...edgeEntries.map((name) => `./${name}`)],
      include: [],
    }),
  );
  try {
    run(["-p", config]);
  } finally {
    rmSync(config, { force: true });
  }
  mkdirSync(join(out, "shared", "generated"), { recursive: true });
  copyFileSync(join(root, "shared", "generated", "sha256.wasm"), join(out, "shared", "generated", "sha256.wasm"));
}

// Worker URLs: `new URL("./x.ts", import.meta.url)` -> `./x.js` (the file tsc emitted).
const workerUrl = /new URL\((["'])(\.{1,2}\/[^"']+)\.ts\1, import\.meta\.url\)/g;
let rewritten = 0;
for (const entry of readdirSync(out, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith(".js")) continue;
  const path = join(entry.parentPath, entry.name);
  const code = readFileSync(path, "utf8");
  const fixed = code.replace(workerUrl, (_match, quote, stem) => {
    rewritten++;
    if (!existsSync(join(dirname(path), `${stem}.js`))) throw new Error(`${path}: ${stem}.js was not emitted`);
    return `new URL(${quote}${stem}.js${quote}, import.meta.url)`;
  });
  if (fixed !== code) writeFileSync(path, fixed);
}
if (rewritten === 0) throw new Error("no Web Worker URL found to rewrite: has client/hashing/worker-hasher.ts changed?");
chmodSync(join(out, "client", "cli.js"), 0o755);
console.log(`dist/pkg: client, shared${edgeEntries.length > 0 ? `, edge (${edgeEntries.join(", ")})` : ""}; ${rewritten} worker URLs`);
