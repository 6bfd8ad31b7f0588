#!/usr/bin/env node
/**
 * `npm run chaos -- --runs N --seed S [--level writer|session|all] [--stop-at-first] [--shrink]`
 *
 * Long runs of the chaos suite (issue 14; test/unit/chaos-*.test.ts): the same property tests as
 * `npm test`, with a bigger budget, through Vitest (so the TypeScript sources run unchanged). By
 * default every schedule runs and all violations are collected (CHAOS_COLLECT=1), so the figures
 * cover the whole run; `--stop-at-first` stops at the first failing schedule instead, and
 * `--shrink` lets fast-check shrink it to a minimal one. Prints the figures at the end: schedules
 * run, faults injected by kind, crashes, uploads finished, lost, unverified publications. Exits 1
 * when any invariant was broken.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "100" },
    seed: { type: "string", default: String(Date.now() % 2_147_483_647) },
    level: { type: "string", default: "all" },
    "stop-at-first": { type: "boolean", default: false },
    shrink: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log("usage: npm run chaos -- --runs N --seed S [--level writer|session|all] [--stop-at-first] [--shrink]");
  process.exit(0);
}
for (const name of ["runs", "seed"]) {
  if (!/^\d+$/.test(values[name])) {
    console.error(`--${name} must be a whole number, got ${values[name]}`);
    process.exit(2);
  }
}
const files = { writer: ["test/unit/chaos-writer.test.ts"], session: ["test/unit/chaos-session.test.ts"] };
files.all = [...files.writer, ...files.session];
const chosen = files[values.level];
if (!chosen) {
  console.error(`--level must be writer, session or all, got ${values.level}`);
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), "chaos-"));
const report = join(dir, "report.jsonl");
writeFileSync(report, "");
console.log(`chaos: ${values.runs} schedules per level, seed ${values.seed} (replay with the same --runs and --seed)`);
const started = Date.now();
const run = spawnSync("npx", ["vitest", "run", "--project", "unit", "--reporter", "dot", ...chosen], {
  stdio: "inherit",
  env: {
    ...process.env,
    CHAOS_RUNS: values.runs,
    CHAOS_SEED: values.seed,
    CHAOS_REPORT: report,
    ...(values["stop-at-first"] ? {} : { CHAOS_COLLECT: "1" }),
    ...(values.shrink ? { CHAOS_SHRINK: "1" } : {}),
  },
});

const records = existsSync(report)
  ? readFileSync(report, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l))
  : [];
rmSync(dir, { recursive: true, force: true });

const kinds = ["failBefore", "failAfter", "timeout", "stale", "latency"];
const sum = (f) => records.reduce((n, r) => n + f(r), 0);
const faults = Object.fromEntries(kinds.map((k) => [k, sum((r) => r.faults[k] ?? 0)]));
const failures = kinds.filter((k) => k !== "latency").reduce((n, k) => n + faults[k], 0);
const violations = sum((r) => r.violationCount);
console.log("");
console.log(
  `chaos figures (seed ${values.seed}, ${values.runs} runs per level, ${records.map((r) => r.level).join(" + ") || "no level reported"}, ${Math.round((Date.now() - started) / 1000)} s)`,
);
console.log(`  schedules run:            ${sum((r) => r.schedules)}`);
console.log(`  storage operations:       ${sum((r) => r.operations)}`);
console.log(
  `  faults injected:          ${failures} (${kinds
    .filter((k) => k !== "latency")
    .map((k) => `${k} ${faults[k]}`)
    .join(", ")}), plus ${faults.latency} delays`,
);
console.log(`  crashes:                  ${sum((r) => r.crashes)}`);
console.log(`  uploads:                  ${sum((r) => r.uploads)}`);
console.log(`  uploads finished:         ${sum((r) => r.finished)} (cancelled ${sum((r) => r.cancelled)})`);
console.log(`  lost:                     ${sum((r) => r.lost)}`);
console.log(`  unverified publications:  ${sum((r) => r.unverified)}`);
console.log(`  multipart uploads orphaned by a lost create answer: ${sum((r) => r.orphansOfLostAnswers ?? 0)} (only a store-side sweep can remove these)`);
console.log(`  invariant violations:     ${violations}`);
for (const r of records) {
  for (const [kind, n] of r.violationKinds) console.log(`    ${r.level}: ${n}x ${kind}`);
  for (const [name, n] of Object.entries(r.unexpected)) console.log(`    ${r.level}: unexpected error ${n}x ${name}`);
}
if (violations > 0) {
  const first = records.find((r) => r.failures.length > 0);
  if (first) {
    console.log(`  first failing schedule (${first.level}; save it to a file and run with CHAOS_REPLAY=<file> CHAOS_TRACE=1):`);
    console.log(`    ${JSON.stringify(first.failures[0].schedule)}`);
  }
}
process.exit(violations > 0 || run.status !== 0 ? 1 : 0);
