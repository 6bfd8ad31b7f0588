/**
 * The edge as production runs it, and its baselines: the built worker (`vite build`, the bundle
 * `npm run deploy` uploads) with its Durable Objects, next to a tiny baseline worker, both in ONE
 * workerd process and bound to the SAME local R2 bucket, whose simulator runs in a second workerd
 * process (bench/workerd.ts explains why). Uploads, plain PUTs and hashing then share the runtime,
 * the bucket and the disk; workerd's CPU and RSS read from /proc cover the workers alone, and the
 * simulator's are read separately.
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
import { startR2Simulator, startWorkers, type WorkerModule, type WorkerSpec } from "./workerd.ts";

export interface Baseline {
  /** The edge worker (tus API), built and run directly in workerd. */
  edgeUrl: string;
  /** The baseline worker: `PUT /put/<key>`, `/multipart/<key>`, `/drain`, `/hash` (bench/baseline-worker.js). */
  url: string;
  /** The workerd process running both workers. */
  workerdPid: number;
  /** The workerd process running the R2 simulator they share. */
  r2Pid: number;
  /** The simulator's loopback address (for more workers on the same bucket). */
  r2Address: string;
  /** The built edge's modules (`vite build`), for more edges with other vars. */
  edgeModules: WorkerModule[];
  close(): Promise<void>;
}

/** `vite build` of this tree into `outDir` (once: a later call reuses it); returns the worker's directory. */
export function buildEdge(outDir: string): string {
  const root = join(import.meta.dirname, "..");
  if (existsSync(join(outDir, "edge_upload", "index.js"))) return join(outDir, "edge_upload");
  execFileSync(process.execPath, [join(root, "node_modules/vite/bin/vite.js"), "build", "--outDir", outDir, "--logLevel", "warn"], {
    cwd: root,
    stdio: "inherit",
  });
  return join(outDir, "edge_upload");
}

export async function modulesOf(dir: string): Promise<WorkerModule[]> {
  const out: WorkerModule[] = [];
  for (const f of await readdir(dir, { recursive: true })) {
    if (f.endsWith(".js")) out.push({ name: f, esModule: await readFile(join(dir, f), "utf8") });
    else if (f.endsWith(".wasm")) out.push({ name: f, wasm: new Uint8Array(await readFile(join(dir, f))) });
  }
  return out;
}

/** The built edge as a workerd worker, as `npm start` configures it, plus `vars` (e.g. STORAGE=s3). */
export function edgeWorker(name: string, modules: WorkerModule[], vars: Record<string, string> = {}): WorkerSpec {
  return {
    name,
    compatibilityDate: "2026-10-01",
    modules,
    durableObjects: ["UploadObject", "NamespaceObject"],
    bindings: [
      { name: "UPLOADS", durableObjectNamespace: { className: "UploadObject" } },
      { name: "NAMESPACES", durableObjectNamespace: { className: "NamespaceObject" } },
      // As `npm start` runs it: anonymous uploads, any origin.
      { name: "ALLOW_ANONYMOUS", text: "true" },
      { name: "CORS_ORIGINS", text: "*" },
      ...Object.entries(vars).map(([k, v]) => ({ name: k, text: v })),
    ],
    ...(vars.STORAGE === "s3" ? { loopbackOutbound: true } : {}),
  };
}

export async function startBaseline(stateDir: string, buildDir: string): Promise<Baseline> {
  const here = import.meta.dirname;
  const edgeModules = await modulesOf(buildEdge(buildDir));
  const r2 = await startR2Simulator(join(stateDir, "r2"), "edge-upload");
  try {
    const workers = await startWorkers(
      [
        edgeWorker("edge-upload", edgeModules),
        {
          name: "bench-baseline",
          compatibilityDate: "2026-10-01",
          modules: [
            { name: "baseline-worker.js", esModule: await readFile(join(here, "baseline-worker.js"), "utf8") },
            { name: "sha256.wasm", wasm: new Uint8Array(await readFile(join(here, "../shared/generated/sha256.wasm"))) },
          ],
          bindings: [],
        },
      ],
      r2.address,
      join(stateDir, "durable-objects"),
    );
    const edgeUrl = workers.urls["edge-upload"] ?? "";
    const health = await fetch(`${edgeUrl}/health`);
    if (!health.ok) throw new Error(`built edge not healthy: ${health.status}`);
    return {
      edgeUrl,
      url: workers.urls["bench-baseline"] ?? "",
      workerdPid: workers.pid,
      r2Pid: r2.pid,
      r2Address: r2.address,
      edgeModules,
      close: async () => {
        await workers.close();
        await r2.close();
      },
    };
  } catch (error) {
    await r2.close();
    throw error;
  }
}
