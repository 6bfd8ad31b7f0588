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
import fc from "fast-check";
import type { Sha256Digest } from "../../shared/digest.ts";
import { isLinked } from "../../edge/registry/blobs.ts";
import { SimulatedCrash, isInjectedFault, mulberry32 } from "../../edge/storage/faulty.ts";
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
import { ChaosFigures, chaosTest, noteDelivered, type ScheduleRun, startProcess, startSchedule, tickSleep } from "../support/chaos.ts";
import { type BaseSchedule, type BaseUploadSpec, baseUploadArbs, maybeStep, PART_EDGE_SIZES, uploadSizeArb, scheduleArb } from "../support/chaos.ts";
import { digestOf, finishedProblems, hexBytes, leftoverProblems, MiB, nextChunkSize, PART, storedOffset, uploadIdOf } from "../support/chaos.ts";

/** CHAOS_TRACE=1: log every client step (use with CHAOS_REPLAY=<file with one schedule as JSON>). */
const TRACE = process.env.CHAOS_TRACE === "1";
const figures = new ChaosFigures();
const NAMESPACE = "chaos/writer";
/** Steps one upload may take before it counts as not converging (lost). */
const MAX_STEPS = 400;

interface UploadSpec extends BaseUploadSpec {
  /** The step at which the client cancels, if it does. */
  cancelAt: number | null;
  /** Chance that a request body breaks off part-way (a dropped connection). */
  cutChance: number;
  /** Send a tus Upload-Checksum with every body (transactional writes). */
  checksums: boolean;
  /** Chance of dropping the writer between two steps (a Durable Object reset). */
  resetChance: number;
}

interface Schedule extends BaseSchedule {
  /** Chance that a "process" (one writer lifetime's storage) dies at a random operation. */
  crashChance: number;
  uploads: UploadSpec[];
}

const uploadArb: fc.Arbitrary<UploadSpec> = fc.record({
  ...baseUploadArbs(uploadSizeArb([...PART_EDGE_SIZES, 3 * PART - 1], 25 * MiB)),
  cancelAt: maybeStep(12, 3),
  cutChance: fc.constantFrom(0, 0.2, 0.5),
  checksums: fc.boolean(),
  resetChance: fc.constantFrom(0, 0.1, 0.4),
});

const schedules = scheduleArb<Schedule>({ crashChance: fc.constantFrom(0, 0.2, 0.5) }, uploadArb);

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
  const run = startSchedule(figures, s);
  await Promise.all(s.uploads.map((u, i) => runUpload(s, u, i, run)));
  return run.end();
}

async function runUpload(s: Schedule, u: UploadSpec, index: number, run: ScheduleRun): Promise<void> {
  const { store, rates, delivered, checkBlobs, violations } = run;
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
  const crash = { chance: s.crashChance, within: 120 };
  let proc = startProcess(store, random, rates, crash);
  /** What the writer talks to: the process's storage, noting the multipart ids it was told. */
  let seen = noteDelivered(proc, delivered);

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
        const want = nextChunkSize(u, chunk++);
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
        figures.endProcess(proc);
        proc = startProcess(store, random, rates, crash);
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
  figures.endProcess(proc);
  trace(`outcome ${outcome ?? "none"}`);

  if (outcome === "finished") {
    figures.finished++;
    for (const p of await finishedProblems(store, NAMESPACE, id, data)) say(p);
  } else if (outcome === "cancelled") {
    figures.cancelled++;
    for (const p of await leftoverProblems(store, NAMESPACE, id)) say(`after cancel: ${p}`);
  }
}

chaosTest({ subject: "upload writer", level: 1, report: "writer", defaultRuns: 25, figures, schedules, run: runSchedule });
