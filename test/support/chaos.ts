/**
 * Shared pieces of the chaos suite (issue 14; test/unit/chaos-*.test.ts, `npm run chaos`): the
 * budget read from the environment, the test that runs the schedules (or replays one), the
 * arbitraries both levels draw from, a sleep that counts event-loop turns, a driver layer that
 * knows which multipart uploads are still open, the storage invariants checked after every step,
 * and the figures a run prints.
 *
 * The invariants are checked on the store itself (below the fault-injecting wrapper), never
 * through it: a check must see the truth, not a stale or failed read.
 */
import { listKeys } from "../../edge/registry/blobs.ts";
import { createHash } from "node:crypto";
import { appendFileSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, expect, test } from "vitest";
import { type Sha256Digest } from "../../shared/digest.ts";
import { blobDataPath, blobsPrefix, uploadInfoPath, uploadPrefix } from "../../edge/registry/paths.ts";
import { readLink } from "../../edge/registry/blobs.ts";
import { bodyBytes, readAll } from "../../edge/storage/body.ts";
import { BadDigestError, PathNotFoundError, type MultipartUpload, type StorageDriver } from "../../edge/storage/driver.ts";
import { createFaultyDriver, FAULT_KINDS, type FaultKind, type FaultRates, type FaultStats, type FaultyDriver } from "../../edge/storage/faulty.ts";
import { createMemoryDriver } from "../../edge/storage/memory.ts";
import { createResumableSha256 } from "../../shared/sha256.ts";

export const MiB = 1024 * 1024;
/** The smallest part size the writer accepts: the most parts (and part boundaries) per byte. */
export const PART = 5 * MiB;

export interface ChaosBudget {
  /** fast-check runs (schedules) per property. */
  runs: number;
  seed: number;
  /** CHAOS_COLLECT=1: run every schedule and report all violations at the end, instead of stopping at the first. */
  collect: boolean;
  /** CHAOS_SHRINK=1: on a failure, let fast-check shrink it to a minimal schedule (slow). */
  shrink: boolean;
}

/**
 * `CHAOS_RUNS` / `CHAOS_SEED` (set by scripts/chaos.mjs for long runs); the defaults keep each
 * file well under half a minute in `npm test`, with a fixed seed so a failure there replays.
 */
function chaosBudget(defaultRuns: number, defaultSeed = 20261114): ChaosBudget {
  const runs = Number(process.env.CHAOS_RUNS ?? defaultRuns);
  const seed = Number(process.env.CHAOS_SEED ?? defaultSeed);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`CHAOS_RUNS must be a positive integer, got ${process.env.CHAOS_RUNS}`);
  if (!Number.isSafeInteger(seed)) throw new Error(`CHAOS_SEED must be an integer, got ${process.env.CHAOS_SEED}`);
  return { runs, seed, collect: process.env.CHAOS_COLLECT === "1", shrink: process.env.CHAOS_SHRINK === "1" };
}

/**
 * A delay of `n` event-loop turns instead of milliseconds: latencies and timeouts reorder
 * concurrent work as real ones would, but a run neither waits on the clock nor depends on it.
 */
export async function tickSleep(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** What every schedule of either level has: the store profile, fault rates and a seed. */
export interface BaseSchedule {
  store: "r2" | "s3";
  rates: FaultRates;
  seed: number;
}

/**
 * The level's one test: the budget's schedules drawn from `schedules` (fast-check, fixed seed), or
 * with CHAOS_REPLAY=<file> the one saved schedule in it (one test either way, none skipped); then
 * the figures printed and appended to the report under `report`.
 */
export function chaosTest<S extends BaseSchedule>(o: {
  /** What runs under chaos, as the test and the figures name it. */
  subject: string;
  level: number;
  /** The level's name in the CHAOS_REPORT lines (scripts/chaos.mjs). */
  report: string;
  /** Schedules per run when CHAOS_RUNS does not say. */
  defaultRuns: number;
  figures: ChaosFigures;
  schedules: fc.Arbitrary<S>;
  run(schedule: S): Promise<string[]>;
}): void {
  const { figures } = o;
  const budget = chaosBudget(o.defaultRuns);
  const replay = process.env.CHAOS_REPLAY;
  test(replay !== undefined ? "replay of one schedule (CHAOS_REPLAY)" : `${o.subject} under chaos: ${budget.runs} schedules, seed ${budget.seed}`, {
    timeout: 0,
  }, async () => {
    if (replay !== undefined) {
      const s = JSON.parse(readFileSync(replay, "utf8")) as S;
      expect(await o.run(s)).toEqual([]);
      return;
    }
    // hash-wasm compiles its module on first use, off the event loop: done before any schedule,
    // so that wait cannot fall in the middle of one.
    await createResumableSha256();
    await fc.assert(
      fc.asyncProperty(o.schedules, async (s) => {
        const violations = await o.run(s);
        if (!budget.collect) expect(violations).toEqual([]);
      }),
      { seed: budget.seed, numRuns: budget.runs, endOnFailure: !budget.shrink },
    );
    expect(figures.violations).toEqual([]);
  });
  afterAll(() => {
    console.log(figures.summary(`chaos, level ${o.level} (${o.subject}): seed ${budget.seed}, ${budget.runs} runs`));
    figures.report(o.report);
  });
}

/** A probability in steps of 0.001 (fast-check's doubles crowd near 0, which would inject nothing). */
const probability = (max: number) => fc.integer({ min: 0, max: Math.round(max * 1000) }).map((n) => n / 1000);

/** Failure, timeout, latency and stale-read rates of a schedule. */
const faultRatesArb: fc.Arbitrary<FaultRates> = fc.record({
  failBefore: probability(0.04),
  failAfter: probability(0.04),
  timeout: probability(0.01),
  latency: probability(0.3),
  stale: probability(0.1),
});

/**
 * A schedule: the store profile and fault rates, the level's own fields, then a seed and one to
 * three uploads (in this order, so that a seed keeps drawing the same schedules).
 */
export function scheduleArb<S extends BaseSchedule & { uploads: unknown[] }>(
  own: { [K in Exclude<keyof S, keyof BaseSchedule | "uploads">]: fc.Arbitrary<S[K]> },
  upload: fc.Arbitrary<S["uploads"][number]>,
): fc.Arbitrary<S> {
  return fc.record({
    store: fc.constantFrom("r2", "s3"),
    rates: faultRatesArb,
    ...own,
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    uploads: fc.array(upload, { minLength: 1, maxLength: 3 }),
  }) as unknown as fc.Arbitrary<S>;
}

/** Sizes around the part boundaries, where the writer's part logic turns. */
export const PART_EDGE_SIZES = [0, 1, PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 1];

/** An upload's size: mostly small or at part edges, sometimes up to `largest`. */
export function uploadSizeArb(edges: number[], largest: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 64 * 1024 }) },
    { weight: 3, arbitrary: fc.constantFrom(...edges) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 * PART + 1000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: largest }) },
  );
}

/** A step number up to `max`, or (`weightNull` times as likely) none. */
export const maybeStep = (max: number, weightNull: number) =>
  fc.oneof({ weight: weightNull, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: 0, max }) });

/** What every upload of either level has; its fields come first, in this order, so a seed draws the same schedules. */
export interface BaseUploadSpec {
  size: number;
  dataSeed: number;
  /** Request body sizes, used in turn (each at least 1/20 of the upload, so big uploads take few steps). */
  chunks: number[];
  digestAt: "create" | "mid" | "finish" | "never";
  /** Where a mid-upload declaration happens, as a share of the length. */
  midAt: number;
}

export function baseUploadArbs(sizes: fc.Arbitrary<number>): { [K in keyof BaseUploadSpec]: fc.Arbitrary<BaseUploadSpec[K]> } {
  return {
    size: sizes,
    dataSeed: fc.integer({ min: 1, max: 3 }), // few seeds: concurrent uploads of the same bytes meet at one blob
    chunks: fc.array(fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 3 * PART }), fc.constant(PART)), { minLength: 1, maxLength: 5 }),
    digestAt: fc.constantFrom("create", "mid", "finish", "never"),
    midAt: fc.integer({ min: 0, max: 100 }).map((n) => n / 100),
  };
}

/** The size of the next request body: the spec's chunk sizes in turn, at least 1/20 of the upload. */
export function nextChunkSize(u: BaseUploadSpec, n: number): number {
  return Math.max(u.chunks[n % u.chunks.length] ?? 1, Math.ceil(u.size / 20));
}

export function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** One schedule's store and what it found so far. */
export interface ScheduleRun {
  /** The store itself (below every fault injector), tracking open multipart uploads. */
  store: TrackedDriver;
  /** The schedule's rates; stale reads only where a store may give them (S3-like), R2 is strongly consistent. */
  rates: FaultRates;
  /** Ids of multipart uploads whose creation answered the code (noteDelivered). */
  delivered: Set<string>;
  violations: string[];
  /** Notes, once each, every blob-path key whose bytes do not hash to its digest. */
  checkBlobs(): Promise<void>;
  /**
   * Lets what crashed processes still had in flight land, checks the blobs and the multipart uploads
   * left open one last time, and returns the schedule's violations (judged into the figures).
   */
  end(): Promise<string[]>;
}

/** A fresh in-memory store for schedule `s` (with copy where S3 has it), counted in the figures. */
export function startSchedule(figures: ChaosFigures, s: BaseSchedule): ScheduleRun {
  const store = trackMultiparts(digestsOnTheLoop(createMemoryDriver({ copy: s.store === "s3" })));
  const verified = new Map<string, string>();
  const delivered = new Set<string>();
  const violations: string[] = [];
  figures.schedules++;
  const checkBlobs = async () => {
    for (const b of await unverifiedBlobs(store, verified)) {
      if (verified.has(`unverified:${b}`)) continue;
      verified.set(`unverified:${b}`, "");
      figures.unverified++;
      violations.push(`unverified publication: ${b}`);
    }
  };
  return {
    store,
    rates: s.store === "s3" ? s.rates : { ...s.rates, stale: 0 },
    delivered,
    violations,
    checkBlobs,
    async end() {
      await tickSleep(50);
      await checkBlobs();
      const open = store.openMultiparts();
      const known = open.filter((o) => delivered.has(o.uploadId));
      figures.orphansOfLostAnswers += open.length - known.length;
      if (known.length > 0)
        violations.push(`multipart uploads left open that the code knew: ${known.map((o) => o.key.replace(/[0-9a-f]{64}/g, "<hex>")).join(", ")}`);
      return figures.judge(s, violations);
    },
  };
}

/**
 * The storage of one "process" (a Durable Object lifetime) over the store: faults at `rates`, and
 * with `crash` given, a crash at a random operation within the first `within` with chance `chance`.
 * Without `crash`, no number is drawn for it.
 */
export function startProcess(store: StorageDriver, random: () => number, rates: FaultRates, crash?: { chance: number; within: number }): FaultyDriver {
  const crashAt = crash && random() < crash.chance ? 1 + Math.floor(random() * crash.within) : undefined;
  return createFaultyDriver(store, {
    seed: Math.floor(random() * 2 ** 31),
    rates,
    maxLatencyMs: 3,
    timeoutMs: 4,
    staleWindow: 12,
    sleep: tickSleep,
    ...(crashAt === undefined ? {} : { crashAt }),
  });
}

/**
 * The store with its put-time SHA-256 check (`sha256`) done here on the event loop. The memory
 * driver checks with Web Crypto, whose digest runs on Node's thread pool and resolves after as
 * many event-loop turns as the machine's load allows; everything else in a schedule moves by
 * turns (tickSleep), so that one wait decided how concurrent work interleaved, and the same seed
 * could run differently (chaos-session seed 14: a finish's blob put raced a slow tail put).
 */
function digestsOnTheLoop(inner: StorageDriver): StorageDriver {
  const checked: StorageDriver = {
    ...inner,
    put: async (key, body, opts = {}) => {
      if (opts.sha256 === undefined) return inner.put(key, body, opts);
      const bytes = await bodyBytes(body);
      if (sha256Hex(bytes) !== opts.sha256.toLowerCase()) throw new BadDigestError(key, inner.name);
      const rest = { ...opts };
      delete rest.sha256;
      return inner.put(key, bytes, rest);
    },
  };
  if (!inner.copy) delete checked.copy;
  return checked;
}

export interface OpenMultipart {
  key: string;
  uploadId: string;
}

/** A driver that knows which multipart uploads were created and neither completed nor aborted. */
export interface TrackedDriver extends StorageDriver {
  openMultiparts(): OpenMultipart[];
}

/**
 * Wraps the real store (under the fault injector) and tracks multipart uploads: every one that was
 * created, whatever happened to the answer, until a complete or an abort of it succeeds. An open
 * one at the end is an orphan: its parts cost storage and nothing will ever reach it again.
 */
export function trackMultiparts(inner: StorageDriver): TrackedDriver {
  const open = new Map<string, OpenMultipart>();
  const wrap = (mp: MultipartUpload): MultipartUpload => ({
    key: mp.key,
    uploadId: mp.uploadId,
    uploadPart: (n, body) => mp.uploadPart(n, body),
    complete: async (parts) => {
      const info = await mp.complete(parts);
      open.delete(mp.uploadId);
      return info;
    },
    abort: async () => {
      await mp.abort();
      open.delete(mp.uploadId);
    },
  });
  const tracked: TrackedDriver = {
    ...inner,
    name: inner.name,
    openMultiparts: () => [...open.values()],
    createMultipart: async (key) => {
      const mp = await inner.createMultipart(key);
      open.set(mp.uploadId, { key: mp.key, uploadId: mp.uploadId });
      return wrap(mp);
    },
    resumeMultipart: (key, uploadId) => wrap(inner.resumeMultipart(key, uploadId)),
  };
  if (!inner.copy) delete tracked.copy;
  return tracked;
}

/**
 * Wraps the driver the code under test sees, noting the id of every multipart upload whose
 * creation answered it: an upload left open with such an id is one the code knew and dropped.
 */
export function noteDelivered(driver: StorageDriver, delivered: Set<string>): StorageDriver {
  const noted: StorageDriver = {
    ...driver,
    createMultipart: async (key) => {
      const mp = await driver.createMultipart(key);
      delivered.add(mp.uploadId);
      return mp;
    },
  };
  if (!driver.copy) delete noted.copy;
  return noted;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function digestOf(bytes: Uint8Array): Sha256Digest {
  return `sha256:${sha256Hex(bytes)}`;
}

/** Every key under a prefix, from the store itself. */
export function keysUnder(driver: StorageDriver, prefix: string): Promise<string[]> {
  return listKeys(driver, prefix);
}

const BLOB_KEY = /^docker\/registry\/v2\/blobs\/sha256\/([0-9a-f]{2})\/([0-9a-f]{64})\/data$/;

/**
 * "Nothing unverified is ever at a blob path": every key under `blobs/` is a blob's `data` whose
 * bytes hash to the digest in its path. Returns the keys that break it. `verified` caches
 * key -> etag of blobs already hashed, so each stored version is hashed once.
 */
export async function unverifiedBlobs(driver: StorageDriver, verified: Map<string, string>): Promise<string[]> {
  const bad: string[] = [];
  for (const key of await keysUnder(driver, blobsPrefix)) {
    const m = BLOB_KEY.exec(key);
    if (!m || m[2]?.slice(0, 2) !== m[1]) {
      bad.push(`${key} (not a blob data path)`);
      continue;
    }
    try {
      const got = await driver.get(key);
      if (verified.get(key) === got.etag) {
        await got.body.cancel();
        continue;
      }
      const bytes = await readAll(got.body);
      if (sha256Hex(bytes) === m[2]) verified.set(key, got.etag);
      else bad.push(`${key} (${bytes.length} bytes hashing to sha256:${sha256Hex(bytes)})`);
    } catch (err) {
      if (!(err instanceof PathNotFoundError)) throw err; // deleted meanwhile: nothing there
    }
  }
  return bad;
}

/** The committed offset in the upload record as stored, undefined when there is no record. */
export async function storedOffset(driver: StorageDriver, namespace: string, id: string): Promise<number | undefined> {
  try {
    const got = await driver.get(uploadInfoPath(namespace, id));
    return (JSON.parse(new TextDecoder().decode(await readAll(got.body))) as { offset: number }).offset;
  } catch (err) {
    if (err instanceof PathNotFoundError) return undefined;
    throw err;
  }
}

/** Problems with a finished upload: blob bytes, link, leftovers under its prefix. Empty when it is done right. */
export async function finishedProblems(driver: StorageDriver, namespace: string, id: string, data: Uint8Array): Promise<string[]> {
  const digest = digestOf(data);
  const problems: string[] = [];
  try {
    const stored = await readAll((await driver.get(blobDataPath(digest))).body);
    if (stored.length !== data.length || sha256Hex(stored) !== digest.slice(7)) problems.push(`blob ${digest} holds other bytes`);
  } catch (err) {
    if (!(err instanceof PathNotFoundError)) throw err;
    problems.push(`no blob at ${blobDataPath(digest)}`);
  }
  if ((await readLink(driver, namespace, digest)) !== digest) problems.push(`${digest} not linked in ${namespace}`);
  problems.push(...(await leftoverProblems(driver, namespace, id)));
  return problems;
}

/** Keys still under an upload's prefix, as problems. */
export async function leftoverProblems(driver: StorageDriver, namespace: string, id: string): Promise<string[]> {
  const keys = await keysUnder(driver, uploadPrefix(namespace, id));
  return keys.length > 0 ? [`keys left under the upload: ${keys.map((k) => k.slice(uploadPrefix(namespace, id).length)).join(", ")}`] : [];
}

/** A 64-hex upload id from a number (Durable Object ids look like this). */
export function uploadIdOf(n: number): string {
  return sha256Hex(new TextEncoder().encode(`chaos-upload-${n}`));
}

/**
 * What a chaos run did and found. Everything a long run prints (schedules, faults by kind, crashes,
 * uploads finished, lost, unverified publications) and the violations that make a run fail.
 */
export class ChaosFigures {
  schedules = 0;
  uploads = 0;
  finished = 0;
  cancelled = 0;
  crashes = 0;
  /** Storage operations made by the code under test (through the fault injector). */
  operations = 0;
  faults: Record<FaultKind, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  /** Uploads that did not converge (or came back from zero after a commit: the store forgot them). */
  lost = 0;
  /** Blob-path keys whose bytes did not hash to their digest, as first seen. */
  unverified = 0;
  /** Errors the client saw that were neither injected faults nor crashes nor expected answers, by name. */
  unexpected: Record<string, number> = {};
  /**
   * Multipart uploads left open whose creation never answered the code (a lost answer, a timeout,
   * a crash): no writer can know them, only a store-side sweep (S3 ListMultipartUploads, R2's
   * automatic abort of uploads idle for 7 days) removes them. Counted apart from violations.
   */
  orphansOfLostAnswers = 0;
  /** Every broken invariant, in words (the first few are printed). */
  violations: string[] = [];
  /** Schedules that broke an invariant, with what they broke (collect mode keeps going after one). */
  failures: { schedule: unknown; violations: string[] }[] = [];

  /**
   * Records a schedule's violations, each prefixed with the store profile it ran on ("r2":
   * strongly consistent; "s3": also stale reads and listings), so a report tells bugs that need
   * eventual consistency from those that do not; returns them.
   */
  judge(schedule: { store: string }, violations: string[]): string[] {
    const labelled = violations.map((v) => `[${schedule.store}] ${v}`);
    if (labelled.length > 0) {
      this.violations.push(...labelled);
      this.failures.push({ schedule, violations: labelled });
    }
    return labelled;
  }

  /** Violations grouped by kind (hex, numbers and sizes blanked), most frequent first. */
  violationKinds(): [string, number][] {
    const kinds = new Map<string, number>();
    for (const v of this.violations) {
      const label = /^\[[a-z0-9]+\] /.exec(v)?.[0] ?? "";
      const kind =
        label +
        v
          .slice(label.length)
          .replace(/[0-9a-f]{64}/g, "<hex>")
          .replace(/\d+/g, "N");
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    return [...kinds].sort((a, b) => b[1] - a[1]);
  }

  addStats(stats: FaultStats): void {
    this.operations += stats.operations;
    for (const k of FAULT_KINDS) this.faults[k] += stats.faults[k];
  }

  /** A process's storage is done with: its operations and faults, and whether it crashed. */
  endProcess(proc: FaultyDriver): void {
    this.addStats(proc.stats);
    if (proc.crashed) this.crashes++;
  }

  /** The first schedule that met each unexpected error, to replay it. */
  unexpectedFirstSeen: Record<string, unknown> = {};

  unexpectedError(err: unknown, schedule: { store: string }): void {
    const name =
      err instanceof Error
        ? `[${schedule.store}] ${err.name}: ${err.message
            .replace(/[0-9a-f]{16,}/g, "…")
            .replace(/\d+/g, "N")
            .slice(0, 140)}`
        : String(err);
    this.unexpected[name] = (this.unexpected[name] ?? 0) + 1;
    this.unexpectedFirstSeen[name] ??= schedule;
  }

  /** The figures as the runner prints them. */
  summary(title: string): string {
    const faults = FAULT_KINDS.filter((k) => k !== "crash")
      .map((k) => `${k} ${this.faults[k]}`)
      .join(", ");
    const totalFaults = FAULT_KINDS.filter((k) => k !== "crash" && k !== "latency").reduce((n, k) => n + this.faults[k], 0);
    const lines = [
      `${title}`,
      `  schedules run:            ${this.schedules}`,
      `  uploads:                  ${this.uploads} (finished ${this.finished}, cancelled ${this.cancelled})`,
      `  storage operations:       ${this.operations}`,
      `  faults injected:          ${totalFaults} failures + ${this.faults.latency} delays (${faults})`,
      `  crashes:                  ${this.crashes}`,
      `  lost:                     ${this.lost}`,
      `  multipart uploads orphaned by a lost create answer (store-side sweep needed): ${this.orphansOfLostAnswers}`,
      `  unverified publications:  ${this.unverified}`,
      `  invariant violations:     ${this.violations.length}`,
    ];
    const unexpected = Object.entries(this.unexpected).sort((a, b) => b[1] - a[1]);
    if (unexpected.length > 0) lines.push(`  unexpected errors:        ${unexpected.map(([k, n]) => `${n}x ${k}`).join("; ")}`);
    for (const [kind, n] of this.violationKinds()) lines.push(`  violation: ${n}x ${kind}`);
    return lines.join("\n");
  }

  /** Appends the figures as one JSON line to `CHAOS_REPORT` when set (read by scripts/chaos.mjs). */
  report(level: string): void {
    const path = process.env.CHAOS_REPORT;
    if (!path) return;
    const { schedules, uploads, finished, cancelled, crashes, operations, faults, lost, unverified, unexpected } = this;
    const record = {
      level,
      ...{ schedules, uploads, finished, cancelled, crashes, operations, faults, lost, unverified, unexpected },
      violationCount: this.violations.length,
      violationKinds: this.violationKinds(),
      failures: this.failures.slice(0, 40),
      unexpectedFirstSeen: this.unexpectedFirstSeen,
      orphansOfLostAnswers: this.orphansOfLostAnswers,
    };
    appendFileSync(path, `${JSON.stringify(record)}\n`);
  }
}
