/**
 * The CLI against a stand-in edge (test/support/fake-tus-edge.ts) whose store is down: it waits
 * out each 503 as the server asks, announces every wait, and after its bounded number of tries
 * exits 1 saying what failed, how often, for how long, and how to continue.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startFakeEdge } from "../test/support/fake-tus-edge.ts";
import { seededBytes } from "../test/support/seeded.ts";
import { EXIT, parseAttempts } from "./cli.ts";

const cli = join(import.meta.dirname, "cli.ts");
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-upload-cli-retry-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // process.execPath: vitest runs on Node 24, which runs cli.ts through type stripping.
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, EDGE_UPLOAD_TOKEN: "" } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

test("a store that stays down: 10 tries (each wait announced), then exit 1 with what failed and how to continue", async () => {
  // Retry-After: 0 keeps the test quick; the waits themselves are the policy's unit tests.
  const edge = await startFakeEdge((req) =>
    req.method === "OPTIONS" ? undefined : { status: 503, code: "STORAGE_UNAVAILABLE", headers: { "Retry-After": "0" } },
  );
  try {
    const path = join(dir, "down.bin");
    await writeFile(path, seededBytes(5000, 11));
    const { code, stdout, stderr } = await run(["upload", path, "--endpoint", edge.endpoint, "--state-dir", join(dir, "state"), "--quiet"]);

    expect(code).toBe(EXIT.failed);
    expect(stdout).toBe("");
    expect(edge.log.filter((line) => line === "POST 503")).toHaveLength(10);
    expect(stderr).toMatch(
      /edge-upload: The upload server kept failing \(503 STORAGE_UNAVAILABLE\) after 10 attempts over \d+ s; nothing is lost\. Run the same command again to continue where it stopped\.\n$/,
    );
    // Every wait was said once, with its count: attempts 2 to 10 follow the first 9 failures.
    const waits = stderr.match(/unavailable \(503 STORAGE_UNAVAILABLE\); retrying (now|in \d+ s) \(attempt \d+ of 10\)/g) ?? [];
    expect(waits.map((line) => /attempt (\d+)/.exec(line)?.[1])).toEqual(["2", "3", "4", "5", "6", "7", "8", "9", "10"]);
  } finally {
    await edge.close();
  }
});

test("--max-attempts takes a positive count or forever", () => {
  expect(parseAttempts("3")).toBe(3);
  expect(parseAttempts("forever")).toBe(Infinity);
  expect(() => parseAttempts("-1")).toThrow(/max-attempts/);
  expect(() => parseAttempts("lots")).toThrow(/max-attempts/);
});
