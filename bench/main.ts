/**
 * `npm run bench [-- --quick] [-- --only <scenario>[,<scenario>]] [-- --out <dir>]`
 *
 * Starts the `npm start` stack (vite dev + workerd, throw-away state) for the browser items, the
 * built edge and a baseline worker in one workerd (bench/baseline.ts) for the others, generates seeded test files in a temp directory,
 * runs the scenarios one after another (the machine has two cores: nothing runs in parallel with
 * a measurement), and writes bench/results/<date>.md + .svg and latest.md/.svg.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBaseline } from "./baseline.ts";
import { openBenchPage } from "./browser.ts";
import { seededFile, type TestFile } from "./data.ts";
import { load, machine } from "./machine.ts";
import { summary, writeReport } from "./report.ts";
import { crash } from "./scenarios/crash.ts";
import { finish, uploadAndTimeFinish } from "./scenarios/finish.ts";
import { hash } from "./scenarios/hash.ts";
import { mainThread } from "./scenarios/main-thread.ts";
import { memory } from "./scenarios/memory.ts";
import { upload } from "./scenarios/upload.ts";
import { uploadS3 } from "./scenarios/upload-s3.ts";
import { startStack } from "./stack.ts";
import { type BenchContext, GiB, MiB, type Row, type Scenario, type Sizes } from "./types.ts";

/** Memory first: workerd's RSS is then not inflated by earlier scenarios. */
export const SCENARIOS: Scenario[] = [memory, upload, uploadS3, finish, crash, hash, mainThread];

const FULL: Sizes = {
  hash: 512 * MiB,
  mainThread: 1 * GiB,
  upload: 1 * GiB,
  uploadS3: 128 * MiB,
  crash: 512 * MiB,
  finish: 1 * GiB,
  memory: [256 * MiB, 2 * GiB],
};
/** Small enough for the smoke test (< 30 s), large enough for multipart uploads and a mid-upload kill. */
const QUICK: Sizes = {
  hash: 8 * MiB,
  mainThread: 8 * MiB,
  upload: 16 * MiB,
  uploadS3: 16 * MiB,
  crash: 24 * MiB,
  finish: 9 * MiB,
  memory: [8 * MiB, 16 * MiB],
};

/**
 * One small upload and one page load before measuring: vite dev optimises the worker's and the
 * page's dependencies when first requested, and doing that mid-scenario restarts workerd.
 */
async function warmUp(ctx: BenchContext): Promise<void> {
  ctx.log("warm-up: one small upload to each edge, bench page load");
  const f = await ctx.file("warm-up", 9 * MiB + 1);
  await uploadAndTimeFinish(ctx, f.path, f.size, f.digest, "creation");
  const g = await ctx.file("warm-up", 9 * MiB + 1);
  await uploadAndTimeFinish(ctx, g.path, g.size, g.digest, "creation", {
    url: ctx.stack.baseUrl,
    get workerdPid() {
      return ctx.stack.workerdPid;
    },
  });
  await rm(g.path, { force: true });
  const b = await openBenchPage(ctx.stack.baseUrl);
  await b.close();
  await rm(f.path, { force: true });
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(`npm run bench -- [--quick] [--only ${SCENARIOS.map((s) => s.name).join("|")}[,...]] [--out <dir>]`);
    return 0;
  }
  const only = values.only?.split(",").map((s) => s.trim());
  const unknown = only?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
  if (unknown.length) {
    console.error(`unknown scenario(s): ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
    return 2;
  }
  const chosen = SCENARIOS.filter((s) => !only || only.includes(s.name));
  const quick = values.quick;
  const outDir = values.out ?? join(import.meta.dirname, "results");
  const started = performance.now();
  const date = new Date().toISOString();
  const loadBefore = load();
  const dir = await mkdtemp(join(tmpdir(), "edge-upload-bench-"));
  const log = (m: string) => console.log(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}`);

  const rows: Row[] = [];
  const errors: string[] = [];
  let seed = 1000;
  const files: TestFile[] = [];
  const stack = await startStack(join(dir, "state"));
  const baseline = await startBaseline(join(dir, "edge-state"), join(dir, "build"));
  stack.exclude.add(baseline.workerdPid).add(baseline.r2Pid);
  log(
    `page stack at ${stack.baseUrl} (workerd ${stack.workerdPid}); built edge at ${baseline.edgeUrl}, baseline at ${baseline.url} (workerd ${baseline.workerdPid}); load ${loadBefore}`,
  );
  const ctx: BenchContext = {
    quick,
    sizes: quick ? QUICK : FULL,
    dir,
    stack,
    baseline,
    log,
    error(message) {
      errors.push(message);
      log(`FAILED ${message}`);
    },
    async file(label, size) {
      const f = await seededFile(dir, `${label}-${seed}.bin`, size, seed++);
      files.push(f);
      return f;
    },
  };
  try {
    await warmUp(ctx).catch((error: unknown) => errors.push(`warm-up: ${error instanceof Error ? error.message : String(error)}`));
    for (const s of chosen) {
      try {
        rows.push(...(await s.run(ctx)));
      } catch (error) {
        const message = `${s.name}: ${error instanceof Error ? error.message : String(error)}`;
        errors.push(message);
        log(`FAILED ${message}`);
      }
      // Test files are large; drop each scenario's files once it is done.
      for (const f of files.splice(0)) await rm(f.path, { force: true });
    }
  } finally {
    await baseline.close().catch(() => {});
    await stack.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
  rows.sort((a, b) => a.item - b.item);
  const info = {
    date,
    command: `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`,
    machine: machine(),
    load: `1/5/15-min load average ${loadBefore} at start, ${load()} at end`,
    durationSeconds: (performance.now() - started) / 1000,
    quick,
    errors,
  };
  const written = await writeReport(outDir, rows, info);
  console.log(`\n${summary(rows)}\n`);
  const failed = rows.filter((r) => r.pass === false).length;
  console.log(`${rows.length} measures, ${failed} below target, ${errors.length} scenario errors; ${info.durationSeconds.toFixed(0)} s`);
  console.log(`report: ${written.md}\nchart:  ${written.svg}`);
  // Missed targets are results, not failures of the harness; scenario errors are.
  return errors.length ? 1 : 0;
}
