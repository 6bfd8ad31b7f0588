/**
 * Chaos suite, level 1 (issue 14): the upload writer (edge/writer.ts) over a fault-injecting
 * store, driven by a client that retries. Property-based (fast-check): random upload sizes,
 * request chunkings, bodies cut off mid-way, tus checksums, digest declaration points (at
 * creation, mid-upload, at finish, never), cancels, fault schedules (failures before and after an
 * operation took effect, latency, timeouts, stale reads for S3-like stores), writer resets
 * between any two steps and process crashes at any storage operation.
 *
 * The client: on any error it drops its writer and resumes one from storage
 * (resumeUploadWriter), then sends from the committed offset again, as a tus client would after a
 * HEAD. Checked on the store itself after every step:
 * - nothing unverified is ever at a blob path (every blob hashes to its digest);
 * - the committed offset (the stored upload record) never goes back;
 * - every upload converges: finished with exactly its bytes at its digest and linked, or
 *   cancelled; in both cases no key is left under the upload's prefix, and at the end no
 *   multipart upload is left open.
 *
 * Budget: CHAOS_RUNS / CHAOS_SEED (scripts/chaos.mjs, `npm run chaos`); small and fixed by default.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, expect, test } from "vitest";
import type { Sha256Digest } from "../../shared/digest.ts";
import { isLinked } from "../../edge/registry/blobs.ts";
import { createMemoryDriver } from "../../edge/storage/memory.ts";
import { SimulatedCrash, createFaultyDriver, isInjectedFault, mulberry32, type FaultRates, type FaultyDriver } from "../../edge/storage/faulty.ts";
import {
  UploadExistsError,
  UploadUnknownError,
  createUploadWriter,
  resumeUploadWriter,
  type UploadWriter,
  type WriteBody,
  type WriteOptions,
  type WriterOptions,
} from "../../edge/writer/index.ts";
import { seededBytes } from "../support/seeded.ts";
import {
  ChaosFigures,
  MiB,
  PART,
  chaosBudget,
  digestOf,
  finishedProblems,
  leftoverProblems,
  noteDelivered,
  storedOffset,
  tickSleep,
  trackMultiparts,
  unverifiedBlobs,
  uploadIdOf,
  type TrackedDriver,
} from "../support/chaos.ts";

const budget = chaosBudget(25);
/** CHAOS_TRACE=1: log every client step (use with CHAOS_REPLAY=<file with one schedule as JSON>). */
const TRACE = process.env.CHAOS_TRACE === "1";
const figures = new ChaosFigures();
const NAMESPACE = "chaos/writer";
/** Steps one upload may take before it counts as not converging (lost). */
const MAX_STEPS = 400;

interface UploadSpec {
  size: number;
  dataSeed: number;
  /** Request body sizes, used in turn (each at least 1/20 of the upload, so big uploads take few steps). */
  chunks: number[];
  digestAt: "create" | "mid" | "finish" | "never";
  /** Where a mid-upload declaration happens, as a share of the length. */
  midAt: number;
  /** The step at which the client cancels, if it does. */
  cancelAt: number | null;
  /** Chance that a request body breaks off part-way (a dropped connection). */
  cutChance: number;
  /** Send a tus Upload-Checksum with every body (transactional writes). */
  checksums: boolean;
  /** Chance of dropping the writer between two steps (a Durable Object reset). */
  resetChance: number;
}

interface Schedule {
  store: "r2" | "s3";
  rates: FaultRates;
  /** Chance that a "process" (one writer lifetime's storage) dies at a random operation. */
  crashChance: number;
  seed: number;
  uploads: UploadSpec[];
}

/** A probability in steps of 0.001 (fast-check's doubles crowd near 0, which would inject nothing). */
const rate = (max: number) => fc.integer({ min: 0, max: Math.round(max * 1000) }).map((n) => n / 1000);

const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 64 * 1024 }) },
  { weight: 3, arbitrary: fc.constantFrom(0, 1, PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 1, 3 * PART - 1) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 * PART + 1000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 25 * MiB }) },
);

const uploadArb: fc.Arbitrary<UploadSpec> = fc.record({
  size: sizeArb,
  dataSeed: fc.integer({ min: 1, max: 3 }), // few seeds: concurrent uploads of the same bytes meet at one blob
  chunks: fc.array(fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 3 * PART }), fc.constant(PART)), { minLength: 1, maxLength: 5 }),
  digestAt: fc.constantFrom("create", "mid", "finish", "never"),
  midAt: fc.integer({ min: 0, max: 100 }).map((n) => n / 100),
  cancelAt: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 12 }) }),
  cutChance: fc.constantFrom(0, 0.2, 0.5),
  checksums: fc.boolean(),
  resetChance: fc.constantFrom(0, 0.1, 0.4),
});

const scheduleArb: fc.Arbitrary<Schedule> = fc.record({
  store: fc.constantFrom("r2", "s3"),
  rates: fc.record({ failBefore: rate(0.04), failAfter: rate(0.04), timeout: rate(0.01), latency: rate(0.3), stale: rate(0.1) }),
  crashChance: fc.constantFrom(0, 0.2, 0.5),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  uploads: fc.array(uploadArb, { minLength: 1, maxLength: 3 }),
});

class BodyCut extends Error {
  override readonly name = "BodyCut";
}

/** `bytes` as a request body in pieces of up to 1 MiB that breaks off after `cutAt` bytes when given. */
async function* body(bytes: Uint8Array, cutAt: number | undefined): AsyncGenerator<Uint8Array> {
  const end = cutAt ?? bytes.length;
  for (let at = 0; at < end; at += MiB) yield bytes.subarray(at, Math.min(end, at + MiB));
  if (cutAt !== undefined) throw new BodyCut("connection dropped");
}

/** One schedule: a fresh store, its uploads run concurrently, each through its own client. */
async function runSchedule(s: Schedule): Promise<string[]> {
  const store: TrackedDriver = trackMultiparts(createMemoryDriver({ copy: s.store === "s3" }));
  const verified = new Map<string, string>();
  const delivered = new Set<string>();
  const violations: string[] = [];
  figures.schedules++;
  // Stale reads only where a store may give them (S3-like); R2 is strongly consistent.
  const rates: FaultRates = s.store === "s3" ? s.rates : { ...s.rates, stale: 0 };

  const checkBlobs = async () => {
    const bad = await unverifiedBlobs(store, verified);
    for (const b of bad) {
      if (verified.has(`unverified:${b}`)) continue;
      verified.set(`unverified:${b}`, "");
      figures.unverified++;
      violations.push(`unverified publication: ${b}`);
    }
  };

  await Promise.all(s.uploads.map((u, i) => runUpload(s, u, i, store, rates, delivered, checkBlobs, violations)));
  await tickSleep(50); // what crashed processes still had in flight lands
  await checkBlobs();
  const open = store.openMultiparts();
  const known = open.filter((o) => delivered.has(o.uploadId));
  figures.orphansOfLostAnswers += open.length - known.length;
  if (known.length > 0)
    violations.push(`multipart uploads left open that the writer knew: ${known.map((o) => o.key.replace(/[0-9a-f]{64}/g, "<hex>")).join(", ")}`);
  return figures.judge(s, violations);
}

async function runUpload(
  s: Schedule,
  u: UploadSpec,
  index: number,
  store: TrackedDriver,
  rates: FaultRates,
  delivered: Set<string>,
  checkBlobs: () => Promise<void>,
  violations: string[],
): Promise<void> {
  figures.uploads++;
  const id = uploadIdOf(index);
  const data = seededBytes(u.size, u.dataSeed);
  const digest: Sha256Digest = digestOf(data);
  const random = mulberry32(s.seed + index * 7919);
  const writerOptions: WriterOptions = { partSize: PART, retryDelayMs: 1, sleep: tickSleep };
  const say = (what: string) => violations.push(`upload ${index} (${u.size} bytes, digest ${u.digestAt}): ${what}`);
  const trace = (what: string) => {
    if (TRACE) console.log(`[upload ${index}] step ${steps} op ${proc.stats.operations}: ${what}`);
  };

  /** The storage of the current "process" (one Durable Object lifetime); replaced after a crash. */
  const startProcess = (): FaultyDriver => {
    const crashAt = random() < s.crashChance ? 1 + Math.floor(random() * 120) : undefined;
    return createFaultyDriver(store, {
      seed: Math.floor(random() * 2 ** 31),
      rates,
      maxLatencyMs: 3,
      timeoutMs: 4,
      staleWindow: 12,
      sleep: tickSleep,
      ...(crashAt === undefined ? {} : { crashAt }),
    });
  };
  let proc = startProcess();
  /** What the writer talks to: the process's storage, noting the multipart ids it was told. */
  let seen = noteDelivered(proc, delivered);
  const endProcess = () => {
    figures.addStats(proc.stats);
    if (proc.crashed) figures.crashes++;
  };

  let writer: UploadWriter | undefined;
  let created = false;
  let committed = 0;
  let outcome: "finished" | "cancelled" | undefined;
  let steps = 0;
  let chunk = 0;
  const cancelling = () => u.cancelAt !== null && steps > u.cancelAt;

  /** A writer for the upload, or undefined when the upload has no record (then `outcome` may be known). */
  const open = async (): Promise<UploadWriter | undefined> => {
    if (!created) {
      try {
        const w = await createUploadWriter(
          seen,
          { namespace: NAMESPACE, id, length: u.size, ...(u.digestAt === "create" ? { declaredDigest: digest } : {}) },
          writerOptions,
        );
        created = true;
        return w;
      } catch (err) {
        if (!(err instanceof UploadExistsError)) throw err;
        created = true;
      }
    }
    try {
      // The caller knows the upload was created (the session's record does the same): a missing
      // `info` is then read again before it is believed.
      return await resumeUploadWriter(seen, { namespace: NAMESPACE, id }, { ...writerOptions, exists: true });
    } catch (err) {
      if (!(err instanceof UploadUnknownError)) throw err;
      // No record: finished (the answer was lost), cancelled, never created, or a stale read.
      if (await isLinked(proc, NAMESPACE, digest)) outcome = "finished";
      else if (cancelling()) outcome = "cancelled";
      else {
        if (committed > 0 && (await storedOffset(store, NAMESPACE, id)) === undefined && !(await isLinked(store, NAMESPACE, digest))) {
          figures.lost++;
          say(`forgotten: no record and no blob after ${committed} bytes were committed`);
        }
        created = false; // create again: an existing record answers UploadExistsError
      }
      return undefined;
    }
  };

  while (outcome === undefined) {
    if (++steps > MAX_STEPS) {
      figures.lost++;
      say(`did not converge in ${MAX_STEPS} steps (committed ${committed})`);
      break;
    }
    if (writer && random() < u.resetChance) writer = undefined; // a reset between two steps
    try {
      if (!writer) {
        trace(created ? "resume" : "create");
        writer = await open();
      }
      if (!writer) continue;
      if (cancelling()) {
        trace("cancel");
        await writer.cancel();
        outcome = "cancelled";
      } else if (writer.offset === writer.length) {
        trace("finish");
        await writer.finish(u.digestAt === "finish" ? digest : undefined);
        outcome = "finished";
      } else {
        if (u.digestAt === "mid" && writer.declaredDigest === undefined && writer.offset >= u.midAt * u.size) {
          trace(`declareDigest at ${writer.offset}`);
          await writer.declareDigest(digest);
        }
        const want = Math.max(u.chunks[chunk++ % u.chunks.length] ?? 1, Math.ceil(u.size / 20));
        const bytes = data.subarray(writer.offset, Math.min(u.size, writer.offset + want));
        const cutAt = random() < u.cutChance ? Math.floor(random() * bytes.length) : undefined;
        const opts: WriteOptions = u.checksums ? { checksum: { algorithm: "sha256", expected: hexBytes(digestOf(bytes).slice(7)) } } : {};
        const b: WriteBody = body(bytes, cutAt);
        trace(`write ${bytes.length} bytes at ${writer.offset}${cutAt === undefined ? "" : `, cut after ${cutAt}`}${u.checksums ? ", with checksum" : ""}`);
        await writer.write(b, opts);
      }
    } catch (err) {
      writer = undefined;
      trace(`error ${err instanceof Error ? `${err.name}: ${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ""}` : String(err)}`);
      if (err instanceof SimulatedCrash) {
        endProcess();
        proc = startProcess();
        seen = noteDelivered(proc, delivered);
      } else if (!isInjectedFault(err) && !(err instanceof BodyCut)) {
        figures.unexpectedError(err, s);
      }
    }
    await checkBlobs();
    const offset = await storedOffset(store, NAMESPACE, id);
    if (offset !== undefined) {
      if (offset < committed) say(`committed offset went back from ${committed} to ${offset}`);
      committed = Math.max(committed, offset);
    }
  }
  endProcess();
  trace(`outcome ${outcome ?? "none"}`);

  if (outcome === "finished") {
    figures.finished++;
    for (const p of await finishedProblems(store, NAMESPACE, id, data)) say(p);
  } else if (outcome === "cancelled") {
    figures.cancelled++;
    for (const p of await leftoverProblems(store, NAMESPACE, id)) say(`after cancel: ${p}`);
  }
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

const replay = process.env.CHAOS_REPLAY;
// One test either way (no skipped test): CHAOS_REPLAY runs one saved schedule instead of the budget.
test(replay !== undefined ? "replay of one schedule (CHAOS_REPLAY)" : `upload writer under chaos: ${budget.runs} schedules, seed ${budget.seed}`, {
  timeout: 0,
}, async () => {
  if (replay !== undefined) {
    const s = JSON.parse(readFileSync(replay as string, "utf8")) as Schedule;
    expect(await runSchedule(s)).toEqual([]);
    return;
  }
  await fc.assert(
    fc.asyncProperty(scheduleArb, async (s) => {
      const violations = await runSchedule(s);
      if (!budget.collect) expect(violations).toEqual([]);
    }),
    { seed: budget.seed, numRuns: budget.runs, endOnFailure: !budget.shrink },
  );
  expect(figures.violations).toEqual([]);
});

afterAll(() => {
  console.log(figures.summary(`chaos, level 1 (upload writer): seed ${budget.seed}, ${budget.runs} runs`));
  figures.report("writer");
});
