/**
 * Shared pieces of the chaos suite (issue 14; test/unit/chaos-*.test.ts, `npm run chaos`): the
 * budget read from the environment, a sleep that counts event-loop turns, a driver layer that
 * knows which multipart uploads are still open, the storage invariants checked after every step,
 * and the figures a run prints.
 *
 * The invariants are checked on the store itself (below the fault-injecting wrapper), never
 * through it: a check must see the truth, not a stale or failed read.
 */
import { listKeys } from "../../edge/registry/blobs.ts";
import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import { type Sha256Digest } from "../../shared/digest.ts";
import { blobDataPath, blobsPrefix, uploadInfoPath, uploadPrefix } from "../../edge/registry/paths.ts";
import { readLink } from "../../edge/registry/blobs.ts";
import { readAll } from "../../edge/storage/body.ts";
import { PathNotFoundError, type MultipartUpload, type StorageDriver } from "../../edge/storage/driver.ts";
import { FAULT_KINDS, type FaultKind, type FaultStats } from "../../edge/storage/faulty.ts";

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
export function chaosBudget(defaultRuns: number, defaultSeed = 20261114): ChaosBudget {
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
