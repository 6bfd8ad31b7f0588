#!/usr/bin/env node
/**
 * `npm start`: builds the page and the worker (`vite build`; @cloudflare/vite-plugin writes the
 * worker with a generated wrangler.json under <out>/edge_upload and the page under <out>/client)
 * and serves the build in local workerd through Miniflare (scripts/serve-build.mjs), with R2 and
 * Durable Objects persisted under .wrangler/state, on http://127.0.0.1:8787 unless PORT says
 * otherwise.
 *
 * Why not `vite dev` (now `npm run dev`, for working on the page) or `wrangler dev`: each puts a
 * proxy in front of workerd that answers 500 when the worker answers a PATCH before reading its
 * body, and `vite dev`'s also under plain load (issue 14 item 6; test/e2e/load.e2e.test.ts).
 *
 * Environment: PORT, UPLOAD_SECRET, ALLOW_ANONYMOUS, CORS_ORIGINS and the vars listed in
 * scripts/local-env.ts go to the worker; EDGE_UPLOAD_STATE_DIR moves the state directory (the
 * layout `vite dev` and `wrangler dev` persist too, so each reads the others' uploads).
 *
 * Options (the tests use them, test/support/server-process.ts):
 *   --out-dir <dir>     build into <dir> instead of dist/
 *   --skip-build        serve what <out-dir> already holds (a restart)
 *   --with-test-pages   also build test/pages/*.html (the browser tests' harness pages)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureGenerated, requireNode } from "./generate.mjs";

requireNode();
// scripts/local-env.ts is TypeScript, shared with vite.config.ts. Node strips types by default
// from 22.18/23.6; on an older 22.x, run this script again with the flag that enables it.
if (!process.features.typescript) {
  const again = spawnSync(process.execPath, ["--experimental-strip-types", "--no-warnings=ExperimentalWarning", ...process.argv.slice(1)], {
    stdio: "inherit",
  });
  process.exit(again.status ?? 1);
}
const { localWorkerVars } = await import("./local-env.ts");

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const flag = (name) => {
  const at = args.indexOf(name);
  if (at >= 0) args.splice(at, 1);
  return at >= 0;
};
const option = (name) => {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const [, value] = args.splice(at, 2);
  if (value === undefined) throw new Error(`${name} needs a value`);
  return value;
};
const outDir = resolve(root, option("--out-dir") ?? "dist");
const skipBuild = flag("--skip-build");
const withTestPages = flag("--with-test-pages");
const port = process.env.PORT ?? "8787";
const stateDir = resolve(root, process.env.EDGE_UPLOAD_STATE_DIR ?? ".wrangler/state");
const workerConfig = join(outDir, "edge_upload", "wrangler.json");

if (!skipBuild) {
  await ensureGenerated();
  const build = spawnSync(process.execPath, [join(root, "node_modules/vite/bin/vite.js"), "build", "--outDir", outDir, "--emptyOutDir", "--logLevel", "warn"], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, ...(withTestPages ? { EDGE_UPLOAD_TEST_PAGES: "1" } : {}) },
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
  if (outDir !== join(root, "dist")) pointDeployConfigAtDist();
}
if (!existsSync(workerConfig)) {
  console.error(`no build at ${workerConfig}: run without --skip-build first`);
  process.exit(1);
}

if (args.length > 0) {
  console.error(`unknown arguments: ${args.join(" ")}`);
  process.exit(2);
}

// Imported only now: it loads wrangler and Miniflare, which need the Node checked above.
const { serveBuild } = await import("./serve-build.mjs");
const dispose = await serveBuild({ configPath: workerConfig, host: "127.0.0.1", port: Number(port), stateDir, vars: localWorkerVars(process.env) });
const shownState = relative(root, stateDir).startsWith("..") ? stateDir : relative(root, stateDir);
console.log(`edge-upload on http://127.0.0.1:${port} (state in ${shownState})`);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    dispose().finally(() => process.exit(0));
  });
}

/**
 * `vite build` records where its output is in .wrangler/deploy/config.json, which a bare
 * `wrangler deploy` reads. A build into another directory (the tests' throw-away ones) must not
 * leave it pointing there: point it back at dist/, where `npm run build` puts the real one.
 */
function pointDeployConfigAtDist() {
  const path = join(root, ".wrangler", "deploy", "config.json");
  const config = { configPath: "../../dist/edge_upload/wrangler.json", auxiliaryWorkers: [] };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(config));
}
