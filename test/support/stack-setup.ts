/**
 * Vitest global setup for the e2e and browser projects.
 * Starts the same stack `npm start` runs (vite dev: page + worker in workerd, local R2 and
 * Durable Objects) on a free loopback port with a throw-away state directory, and hands its
 * URL to the browser tests.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureGenerated } from "../../scripts/generate.mjs";
import { chromiumPath } from "./chromium.ts";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    stateDir: string;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export default async function setup(project: TestProject) {
  if (project.name === "browser") chromiumPath(); // fail fast, with instructions, when no browser is installed
  await ensureGenerated();
  const stateDir = await mkdtemp(join(tmpdir(), "edge-upload-state-"));
  const port = await freePort();
  process.env.PORT = String(port);
  process.env.EDGE_UPLOAD_STATE_DIR = stateDir;
  process.env.ALLOW_ANONYMOUS ??= "true";
  process.env.CORS_ORIGINS ??= "*";
  process.env.EDGE_UPLOAD_VITE_CACHE = join(stateDir, "vite-cache");
  const { createServer } = await import("vite");
  // No file watching and no HMR: a file saved during a run (an editor, another checkout's work)
  // must not restart the worker or reload a page mid-upload.
  const server = await createServer({ configFile: "vite.config.ts", logLevel: "warn", server: { hmr: false, watch: null } });
  await server.listen();
  const baseUrl = `http://127.0.0.1:${port}`;
  const health = await fetch(`${baseUrl}/health`);
  if (!health.ok) throw new Error(`worker not healthy: ${health.status}`);
  project.provide("baseUrl", baseUrl);
  project.provide("stateDir", stateDir);
  return async () => {
    await server.close();
    await rm(stateDir, { recursive: true, force: true });
  };
}
