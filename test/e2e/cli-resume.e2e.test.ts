/**
 * The CLI against the real stack: killed with SIGKILL mid-upload, run again, it finishes with
 * the right digest and the edge serves identical bytes. Plus its exit codes for bad input.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { seededBytes } from "../support/seeded.ts";

const MiB = 1024 * 1024;
const node = process.execPath; // vitest runs on Node 24 (type stripping)
const cli = join(import.meta.dirname, "../../client/cli.ts");
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-upload-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[]) {
  const child = spawn(node, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, exit, out: () => stdout, err: () => stderr };
}

async function uploadedTo(stateDir: string): Promise<number> {
  try {
    const names = await readdir(join(stateDir, "uploads"));
    let max = 0;
    for (const n of names.filter((x) => x.endsWith(".json"))) {
      const r = JSON.parse(await readFile(join(stateDir, "uploads", n), "utf8")) as { uploadedTo?: number };
      max = Math.max(max, r.uploadedTo ?? 0);
    }
    return max;
  } catch {
    return 0;
  }
}

test("killed with SIGKILL mid-upload and run again, the CLI finishes with the right digest", async () => {
  const bytes = seededBytes(40 * MiB + 123, 11);
  const path = join(dir, "big.bin");
  await writeFile(path, bytes);
  const expected = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const stateDir = join(dir, "state");
  const endpoint = `${inject("baseUrl")}/files`;

  // 8 MiB chunks at 8 MiB/s: about five seconds, so the kill lands mid-way.
  const first = run(["upload", path, "--endpoint", endpoint, "--state-dir", stateDir, "--chunk-size", "8M", "--limit-rate", "8M"]);
  let committed = 0;
  while (committed < 8 * MiB) {
    const exited = await Promise.race([first.exit.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]);
    if (exited) throw new Error(`CLI ended before it could be killed: ${first.err()}`);
    committed = await uploadedTo(stateDir);
  }
  first.child.kill("SIGKILL");
  expect((await first.exit).signal).toBe("SIGKILL");
  expect(committed).toBeLessThan(bytes.length);

  const second = run(["upload", path, "--endpoint", endpoint, "--state-dir", stateDir]);
  const { code } = await second.exit;
  expect(second.err()).toMatch(/resuming big\.bin: upload at [1-9]/);
  expect(code).toBe(0);
  const [digest, blobUrl] = second.out().trim().split("\n");
  expect(digest).toBe(expected);
  const served = new Uint8Array(await (await fetch(blobUrl ?? "")).arrayBuffer());
  expect(`sha256:${createHash("sha256").update(served).digest("hex")}`).toBe(expected);
});

test("bad input gets a clear message and its exit code", async () => {
  const endpoint = `${inject("baseUrl")}/files`;
  const usage = run(["upload", "--endpoint", endpoint]);
  expect((await usage.exit).code).toBe(2);
  expect(usage.err()).toContain("missing <file>");

  const badUrl = run(["upload", "x.bin", "--endpoint", "not a url"]);
  expect((await badUrl.exit).code).toBe(2);
  expect(badUrl.err()).toContain("is not a URL");

  const badSize = run(["upload", "x.bin", "--endpoint", endpoint, "--chunk-size", "lots"]);
  expect((await badSize.exit).code).toBe(2);
  expect(badSize.err()).toContain("is not a size");

  const missing = run(["upload", join(dir, "nope.bin"), "--endpoint", endpoint, "--state-dir", join(dir, "s2")]);
  expect((await missing.exit).code).toBe(3);
  expect(missing.err()).toContain("no such file");
});
