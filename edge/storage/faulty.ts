/**
 * A fault-injecting wrapper for any StorageDriver, for the chaos suite (test/unit/chaos-*.test.ts): the writer and
 * the upload session must survive a store that fails, answers late, loses answers, lags behind its
 * own writes, or a process killed between any two storage calls. Everything is drawn from one
 * seeded PRNG (mulberry32), so a failing schedule is replayed by its seed; nothing here reads
 * Math.random or the clock.
 *
 * Per operation (get, put, stat, list, delete, createMultipart, uploadPart, complete, abort,
 * copy) the wrapper may, by the rates given:
 * - `failBefore`: throw without calling the store (nothing happened);
 * - `failAfter`: call the store, then throw (it happened, the answer was lost: the hard case for
 *   retries, e.g. a CreateMultipartUpload whose id never reaches the caller);
 * - `latency`: wait up to `maxLatencyMs` first (reorders concurrent calls);
 * - `timeout`: hang for `timeoutMs`, then throw; the operation took effect or not (a coin flip);
 * - `stale` (reads only: get, stat, list): answer as an eventually consistent S3-like store
 *   would shortly after a write: an older version of a recently overwritten key, "not found" for
 *   a recently created one, a recently deleted key still there (per-key history of the last
 *   `staleWindow` operations).
 * Injected failures are StorageUnavailableError (what a driver throws once its retries for a
 * transient fault ran out), with an InjectedFault as `cause` saying what was done.
 *
 * Crash mode (`crashAt: n`): the n-th operation is the last one this "process" makes. It takes
 * effect or not (a coin flip), then it and every later call through the wrapper throw
 * SimulatedCrash, and calls already in flight still reach the store but their answers become
 * SimulatedCrash too: code running on the wrapper stops where a killed process would, while
 * whatever it had already sent lands. SimulatedCrash is deliberately not a StorageError, so no
 * caller mistakes it for a store condition it knows how to handle.
 */
import { isSizedStream } from "./body.ts";
import { StorageUnavailableError, type MultipartUpload, type PutBody, type StorageDriver } from "./driver.ts";
import { StaleReads } from "./faulty-stale.ts";

/** The operations the wrapper counts and may disturb. */
export type FaultOp = "get" | "put" | "stat" | "list" | "delete" | "createMultipart" | "uploadPart" | "complete" | "abort" | "copy";

/** What the wrapper may do to one operation. */
export type FaultKind = "failBefore" | "failAfter" | "latency" | "timeout" | "stale" | "crash";

export const FAULT_KINDS: readonly FaultKind[] = ["failBefore", "failAfter", "latency", "timeout", "stale", "crash"];

export interface FaultRates {
  /** Probability (0..1) per operation of failing before the store sees it. */
  failBefore?: number;
  /** Probability of failing after the store applied it. */
  failAfter?: number;
  /** Probability of a delay of up to maxLatencyMs before the operation. */
  latency?: number;
  /** Probability of hanging for timeoutMs and then failing (effect: coin flip). */
  timeout?: number;
  /** Probability that a read (get, stat, list) of a recently changed key answers an older state. */
  stale?: number;
}

export interface FaultyDriverOptions {
  /** PRNG seed: the same seed and the same sequence of calls give the same faults. */
  seed: number;
  rates?: FaultRates;
  /** Only these operations are disturbed (default all); every operation is still counted. */
  ops?: readonly FaultOp[];
  /** Largest injected latency (default 5 ms). */
  maxLatencyMs?: number;
  /** How long a timed-out operation hangs before it throws (default 20 ms). */
  timeoutMs?: number;
  /**
   * How many later operations may still see an older state of a changed key (default 16).
   * History is kept only while stale reads are enabled.
   */
  staleWindow?: number;
  /** Older versions larger than this are not kept (only "absent" is remembered); default 256 KiB. */
  staleMaxBytes?: number;
  /**
   * Faults at chosen operations, by 1-based operation index, on top of the rates: a hand-written
   * minimal schedule (e.g. `{ 3: "failAfter" }`: the third operation's answer is lost).
   */
  faultAt?: Readonly<Record<number, "failBefore" | "failAfter" | "timeout">>;
  /** 1-based index of the operation at which the simulated process dies; absent: never. */
  crashAt?: number;
  /**
   * How delays are waited (default setTimeout). Tests pass a sleep that counts event-loop turns
   * instead of milliseconds, so runs are fast and replay identically.
   */
  sleep?: (ms: number) => Promise<void>;
}

/** Counters of one wrapper: how much was done, and how much was done to it. */
export interface FaultStats {
  operations: number;
  byOp: Record<FaultOp, number>;
  faults: Record<FaultKind, number>;
}

export interface FaultyDriver extends StorageDriver {
  readonly stats: FaultStats;
  /** True once the crash point was reached (or crash() was called). */
  readonly crashed: boolean;
  /** Kills the simulated process now: every later call and every answer still due throws SimulatedCrash. */
  crash(): void;
  /** Turns fault injection off (counting goes on): for a test's own checks through the same wrapper. */
  setEnabled(enabled: boolean): void;
}

/** What was injected, carried as the `cause` of the StorageUnavailableError thrown. */
export class InjectedFault extends Error {
  override readonly name = "InjectedFault";
  constructor(
    readonly kind: "failBefore" | "failAfter" | "timeout",
    readonly op: FaultOp,
    /** Whether the store applied the operation. */
    readonly tookEffect: boolean,
  ) {
    super(`injected ${kind} on ${op}${tookEffect ? " (it took effect)" : " (it did not take effect)"}`);
  }
}

/** The simulated process was killed: code that sees this must stop, as if it had never run on. */
export class SimulatedCrash extends Error {
  override readonly name = "SimulatedCrash";
  constructor(
    /** The operation index at which the process died. */
    readonly at: number,
  ) {
    super(`simulated crash at storage operation ${at}`);
  }
}

/** True for the error of an injected fault (any depth of `cause`), false for real store errors. */
export function isInjectedFault(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof InjectedFault) return true;
  }
  return false;
}

/**
 * mulberry32: a tiny, fast 32-bit PRNG, plenty for choosing faults; returns floats in [0, 1).
 * Exported so tests draw their own schedules the same way.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALL_OPS: readonly FaultOp[] = ["get", "put", "stat", "list", "delete", "createMultipart", "uploadPart", "complete", "abort", "copy"];
const READS = new Set<FaultOp>(["get", "stat", "list"]);

/** One wrapper's schedule: its PRNG, counters, and whether the simulated process still lives. */
interface Schedule {
  readonly options: FaultyDriverOptions;
  readonly rates: FaultRates;
  readonly random: () => number;
  readonly disturbed: ReadonlySet<FaultOp>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly driverName: string;
  readonly stats: FaultStats;
  enabled: boolean;
  crashedAt: number | undefined;
}

/** One operation as the schedule runs it. */
interface Operation<T> {
  /** Calls the store. */
  effect: () => Promise<T>;
  /** Reads only: an older answer, or undefined when there is none to give. */
  stale?: () => Promise<T | undefined>;
  /** Releases what the operation would have consumed when it never reaches the store. */
  discard?: () => void;
}

/** Wraps `inner` with seeded faults (see the module comment). */
export function createFaultyDriver(inner: StorageDriver, options: FaultyDriverOptions): FaultyDriver {
  const s = schedule(inner.name, options);
  const stale = new StaleReads(
    inner,
    { enabled: (s.rates.stale ?? 0) > 0, window: options.staleWindow ?? 16, maxBytes: options.staleMaxBytes ?? 256 * 1024 },
    s.random,
    () => s.stats.operations,
  );
  const wrapUpload = (mp: MultipartUpload): MultipartUpload => ({
    key: mp.key,
    uploadId: mp.uploadId,
    uploadPart: (partNumber, body) => run(s, "uploadPart", mp.key, { effect: () => mp.uploadPart(partNumber, body), discard: cancelBody(body) }),
    complete: (parts) => run(s, "complete", mp.key, { effect: () => stale.writing([mp.key], () => mp.complete(parts)) }),
    abort: () => run(s, "abort", mp.key, { effect: () => mp.abort() }),
  });
  const driver: FaultyDriver = {
    name: inner.name,
    stats: s.stats,
    get crashed() {
      return s.crashedAt !== undefined;
    },
    crash() {
      if (s.crashedAt === undefined) {
        s.crashedAt = s.stats.operations;
        s.stats.faults.crash++;
      }
    },
    setEnabled(on) {
      s.enabled = on;
    },
    get: (key, o) => run(s, "get", key, { effect: () => inner.get(key, o), stale: () => stale.get(key, o?.range) }),
    put: (key, body, o) => run(s, "put", key, { effect: () => stale.writing([key], () => inner.put(key, body, o)), discard: cancelBody(body) }),
    stat: (key) => run(s, "stat", key, { effect: () => inner.stat(key), stale: () => stale.info(key) }),
    list: (prefix, o) => run(s, "list", prefix, { effect: () => inner.list(prefix, o), stale: () => stale.list(prefix, o) }),
    delete: (...keys) => run(s, "delete", keys.join(","), { effect: () => stale.writing(keys, () => inner.delete(...keys)) }),
    createMultipart: async (key) => wrapUpload(await run(s, "createMultipart", key, { effect: () => inner.createMultipart(key) })),
    resumeMultipart: (key, uploadId) => {
      assertAlive(s);
      return wrapUpload(inner.resumeMultipart(key, uploadId));
    },
  };
  const copy = inner.copy?.bind(inner);
  if (copy) driver.copy = (from, to) => run(s, "copy", from, { effect: () => stale.writing([to], () => copy(from, to)) });
  return driver;
}

function schedule(driverName: string, options: FaultyDriverOptions): Schedule {
  return {
    options,
    rates: options.rates ?? {},
    random: mulberry32(options.seed),
    disturbed: new Set(options.ops ?? ALL_OPS),
    sleep: options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
    driverName,
    stats: {
      operations: 0,
      byOp: { get: 0, put: 0, stat: 0, list: 0, delete: 0, createMultipart: 0, uploadPart: 0, complete: 0, abort: 0, copy: 0 },
      faults: { failBefore: 0, failAfter: 0, latency: 0, timeout: 0, stale: 0, crash: 0 },
    },
    enabled: true,
    crashedAt: undefined,
  };
}

/** Runs one operation through the fault schedule (see the module comment for what may happen). */
async function run<T>(s: Schedule, op: FaultOp, path: string, operation: Operation<T>): Promise<T> {
  assertAlive(s);
  const index = ++s.stats.operations;
  s.stats.byOp[op]++;
  if (s.options.crashAt !== undefined && index >= s.options.crashAt) return crash(s, index, operation);
  const active = s.enabled && s.disturbed.has(op);
  const planned = s.options.faultAt?.[index];
  if (active && chance(s, s.rates.latency)) {
    s.stats.faults.latency++;
    await s.sleep(Math.floor(s.random() * ((s.options.maxLatencyMs ?? 5) + 1)));
    assertAlive(s);
  }
  if (planned === "failBefore" || (active && chance(s, s.rates.failBefore))) {
    s.stats.faults.failBefore++;
    operation.discard?.();
    throw unavailable(s, path, "failBefore", op, false);
  }
  if (planned === "timeout" || (active && chance(s, s.rates.timeout))) {
    s.stats.faults.timeout++;
    // A planned timeout lands (the worse case: the effect is there, the answer is not).
    const tookEffect = planned === "timeout" || s.random() < 0.5;
    if (tookEffect) await operation.effect().catch(() => undefined);
    else operation.discard?.();
    await s.sleep(s.options.timeoutMs ?? 20);
    assertAlive(s);
    throw unavailable(s, path, "timeout", op, tookEffect);
  }
  if (active && operation.stale && READS.has(op) && chance(s, s.rates.stale)) {
    const old = await staleAnswer(s, operation.stale);
    if (old !== undefined) return old;
  }
  const failAfter = planned === "failAfter" || (active && chance(s, s.rates.failAfter));
  const result = await operation.effect().then(
    (value) => deliver(s, value),
    (err: unknown) => {
      assertAlive(s);
      throw err;
    },
  );
  if (failAfter) {
    s.stats.faults.failAfter++;
    throw unavailable(s, path, "failAfter", op, true);
  }
  return result;
}

/** The crash point: the operation takes effect or not (a coin flip), and the process is dead. */
async function crash<T>(s: Schedule, index: number, operation: Operation<T>): Promise<never> {
  s.crashedAt = index;
  s.stats.faults.crash++;
  if (s.random() < 0.5) await operation.effect().catch(() => undefined);
  else operation.discard?.();
  throw new SimulatedCrash(index);
}

/** An older answer, counted as a stale fault when there is one (or when it is "absent"). */
async function staleAnswer<T>(s: Schedule, stale: () => Promise<T | undefined>): Promise<T | undefined> {
  let old: T | undefined;
  try {
    old = await stale();
  } catch (err) {
    // An older state in which the key was absent: PathNotFoundError, as the store would say.
    s.stats.faults.stale++;
    assertAlive(s);
    throw err;
  }
  if (old === undefined) return undefined;
  s.stats.faults.stale++;
  return deliver(s, old);
}

function chance(s: Schedule, rate: number | undefined): boolean {
  return rate !== undefined && rate > 0 && s.random() < rate;
}

function unavailable(s: Schedule, path: string, kind: InjectedFault["kind"], op: FaultOp, tookEffect: boolean): StorageUnavailableError {
  return new StorageUnavailableError(path, s.driverName, 1, undefined, { cause: new InjectedFault(kind, op, tookEffect) });
}

function assertAlive(s: Schedule): void {
  if (s.crashedAt !== undefined) throw new SimulatedCrash(s.crashedAt);
}

/** A store's answer reaching a process that has died meanwhile is never seen. */
function deliver<T>(s: Schedule, value: T): T {
  assertAlive(s);
  return value;
}

/** A body that will never be sent is cancelled, so its source (often another object's GET) is released. */
function cancelBody(body: PutBody): () => void {
  return () => {
    if (isSizedStream(body)) body.stream.cancel().catch(() => undefined);
  };
}
