/**
 * `npm run bench -- --quick` end to end, so the harness does not rot: it runs every scenario at
 * tiny sizes and writes a report with the expected rows. Speeds are not checked (this machine
 * is shared; the numbers belong in bench/results/, not in assertions).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";

const root = join(import.meta.dirname, "../..");

test("the bench's quick run measures every item and writes the table and the chart", async () => {
  const out = await mkdtemp(join(tmpdir(), "edge-upload-bench-smoke-"));
  try {
    const child = spawn(process.execPath, [join(root, "bench/run.mjs"), "--quick", "--out", out], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    // Stopped before the test's own timeout, so a stuck run still shows where it stopped.
    const stop = setTimeout(() => child.kill("SIGKILL"), 420_000);
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    clearTimeout(stop);
    expect(output, output.slice(-3000)).toContain("0 scenario errors");
    expect(code, output.slice(-3000)).toBe(0);

    const names = await readdir(out);
    expect(names).toContain("latest.md");
    expect(names.filter((n) => n.endsWith(".svg")).length).toBeGreaterThanOrEqual(1);
    const md = await readFile(join(out, "latest.md"), "utf8");
    const rows = md.split("\n").filter((l) => /^\| \d \|/.test(l));
    // Every item of issue 8 has at least one row, each with a value and a verdict.
    for (const item of [1, 2, 3, 4, 5, 6, 7])
      expect(
        rows.some((r) => r.startsWith(`| ${item} |`)),
        `item ${item}`,
      ).toBe(true);
    for (const r of rows) expect(r).toMatch(/\| (pass|FAIL|info) \|$/);
    for (const needle of [
      "raw hash-wasm",
      "Longest main-thread task",
      "plain PUT",
      "tus-js-client",
      "Edge CPU per MiB",
      "re-hashed",
      "re-sent",
      "declared at creation",
      "sent once hashed",
      "sent only on the last PATCH",
      "peak heap",
      "Edge peak RSS",
    ]) {
      expect(md).toContain(needle);
    }
    const svgName = /!\[[^\]]*\]\(([^)]+\.svg)\)/.exec(md)?.[1] ?? "";
    const svg = await readFile(join(out, svgName), "utf8");
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect((svg.match(/<rect /g) ?? []).length).toBeGreaterThan(5);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}, 450_000);
