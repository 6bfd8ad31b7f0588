/**
 * The edge as production runs it, and its baselines, in ONE workerd process (Miniflare, which
 * ships with wrangler): the built worker (`vite build`, the bundle `npm run deploy` uploads) with
 * its local R2 bucket and Durable Objects, next to a tiny baseline worker bound to the SAME R2
 * bucket. Uploads, plain PUTs and hashing then share the runtime, the R2 simulator and the disk,
 * and workerd's CPU and RSS read from /proc cover exactly one of them at a time.
 *
 * Why not the `npm start` stack (vite dev) for the server-side items: under vite dev every
 * request body first passes through the Vite dev server in Node (10 ms/MiB of CPU of its own,
 * and it takes in whole bodies before workerd has processed them), which production does not
 * have, while the plain PUT went straight to workerd: the comparison was unfair to the edge.
 * The browser items (1, 2) still use the stack, which serves the page.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { descendantsNamed, newWorkerd } from "./proc.ts";

export interface Baseline {
  /** The edge worker (tus API), built and run directly in workerd. */
  edgeUrl: string;
  /** The baseline worker: `PUT /put/<key>`, `/multipart/<key>`, `/drain`, `/hash` (bench/baseline-worker.js). */
  url: string;
  /** The workerd process running both. */
  workerdPid: number;
  close(): Promise<void>;
}

type Module = { type: "esm"; contents: string } | { type: "wasm"; contents: Uint8Array<ArrayBuffer> };

/** `vite build` of this tree into `outDir` (once: a later call reuses it); returns the worker's directory. */
export function buildEdge(outDir: string): string {
  const root = join(import.meta.dirname, "..");
  if (existsSync(join(outDir, "edge_upload", "index.js"))) return join(outDir, "edge_upload");
  execFileSync(process.execPath, [join(root, "node_modules/vite/bin/vite.js"), "build", "--outDir", outDir, "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
  return join(outDir, "edge_upload");
}

async function modulesOf(dir: string): Promise<Record<string, Module>> {
  const out: Record<string, Module> = {};
  for (const f of await readdir(dir, { recursive: true })) {
    if (f.endsWith(".js")) out[f] = { type: "esm", contents: await readFile(join(dir, f), "utf8") };
    else if (f.endsWith(".wasm")) out[f] = { type: "wasm", contents: new Uint8Array(await readFile(join(dir, f))) };
  }
  return out;
}

export async function startBaseline(stateDir: string, buildDir: string): Promise<Baseline> {
  const here = import.meta.dirname;
  const edgeDir = buildEdge(buildDir);
  const before = descendantsNamed(process.pid, "workerd");
  const text = (value: string) => ({ type: "text" as const, value });
  const bucket = { type: "r2" as const, name: "edge-upload" };
  const mf = new Miniflare({
    resourcePersistencePath: stateDir,
    host: "127.0.0.1",
    port: 0,
    cf: false, // no fetch of the Request.cf placeholder from the internet
    workers: [
      {
        config: {
          name: "edge-upload",
          compatibilityDate: "2026-10-01",
          compatibilityFlags: ["nodejs_compat"],
          manifest: { mainModule: "index.js", modulesRoot: edgeDir, modules: await modulesOf(edgeDir) },
          env: {
            BUCKET: bucket,
            UPLOADS: { type: "durable-object", worker: "edge-upload", exportName: "UploadObject" },
            // As `npm start` runs it: anonymous uploads, any origin.
            ALLOW_ANONYMOUS: text("true"),
            CORS_ORIGINS: text("*"),
          },
          exports: { UploadObject: { type: "durable-object", storage: "sqlite" } },
        },
      },
      {
        config: {
          name: "bench-baseline",
          compatibilityDate: "2026-10-01",
          manifest: {
            mainModule: "baseline-worker.js",
            modulesRoot: here,
            modules: {
              "baseline-worker.js": { type: "esm", contents: await readFile(join(here, "baseline-worker.js"), "utf8") },
              "sha256.wasm": { type: "wasm", contents: new Uint8Array(await readFile(join(here, "../shared/generated/sha256.wasm"))) },
            },
          },
          env: { BUCKET: bucket },
        },
        dev: { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] },
      },
    ],
  });
  const edgeUrl = (await mf.ready).toString().replace(/\/$/, "");
  const url = (await mf.unsafeGetDirectURL("bench-baseline")).toString().replace(/\/$/, "");
  const health = await fetch(`${edgeUrl}/health`);
  if (!health.ok) throw new Error(`built edge not healthy: ${health.status}`);
  return { edgeUrl, url, workerdPid: newWorkerd(before), close: () => mf.dispose() };
}
