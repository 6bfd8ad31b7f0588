/**
 * Vitest global setup for the e2e and browser projects.
 * Starts what `npm start` runs (scripts/start.mjs: the built page and worker under `wrangler dev`,
 * local R2 and Durable Objects) as a child process on a free loopback port with a throw-away state
 * directory, and hands its URL to the tests. The build also holds the browser tests' harness
 * pages (test/pages/*.html). The build is at inject("stateDir")/build for tests that start
 * servers of their own.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { firefoxPath, webkitDriverPath } from "./browsers.ts";
import { chromiumPath } from "./chromium.ts";
import { startServer } from "./server-process.ts";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    stateDir: string;
  }
}

export default async function setup(project: TestProject) {
  if (project.name === "browser") {
    // Fail fast, with instructions, when a browser the tests drive is not installed.
    chromiumPath();
    firefoxPath();
    webkitDriverPath();
  }
  const stateDir = await mkdtemp(join(tmpdir(), "edge-upload-state-"));
  // EDGE_UPLOAD_TEST_URL=http://127.0.0.1:8787 runs the tests against a server already running
  // (`npm run dev`, say, to compare it with `npm start`): nothing is started or built here.
  const external = process.env.EDGE_UPLOAD_TEST_URL;
  if (external) {
    project.provide("baseUrl", external.replace(/\/$/, ""));
    project.provide("stateDir", stateDir);
    return () => rm(stateDir, { recursive: true, force: true });
  }
  const server = await startServer({ stateDir, testPages: true }).catch(async (err: unknown) => {
    await rm(stateDir, { recursive: true, force: true });
    throw err;
  });
  project.provide("baseUrl", server.baseUrl);
  project.provide("stateDir", stateDir);
  return async () => {
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  };
}
