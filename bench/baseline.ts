/**
 * Baselines that run inside workerd without touching edge/: a tiny worker in Miniflare (its own
 * workerd process) bound to the same local R2 persistence directory as the edge stack. Miniflare
 * ships with wrangler, so nothing is installed for it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { descendantsNamed, newWorkerd } from "./proc.ts";

export interface Baseline {
  url: string;
  workerdPid: number;
  close(): Promise<void>;
}

export async function startBaseline(stateDir: string): Promise<Baseline> {
  const here = import.meta.dirname;
  const before = descendantsNamed(process.pid, "workerd");
  const mf = new Miniflare({
    // The same directory the vite plugin persists the edge's R2 bucket in (<state>/v3).
    resourcePersistencePath: join(stateDir, "v3"),
    host: "127.0.0.1",
    port: 0,
    cf: false, // no fetch of the Request.cf placeholder from the internet
    workers: [
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
          env: { BUCKET: { type: "r2", name: "edge-upload" } },
        },
      },
    ],
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, workerdPid: newWorkerd(before), close: () => mf.dispose() };
}
