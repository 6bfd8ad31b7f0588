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
import { bytesStream, isSizedStream, readAll } from "./body.ts";
import {
  InvalidRangeError,
  PathNotFoundError,
  StorageUnavailableError,
  type ByteRange,
  type GetResult,
  type ListResult,
  type MultipartUpload,
  type ObjectInfo,
  type PutBody,
  type StorageDriver,
} from "./driver.ts";

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

/** One older state of a key: absent, or its bytes and info (undefined bytes: too big to keep). */
type Version = { absent: true } | { absent: false; info: ObjectInfo; bytes: Uint8Array | undefined };

interface HistoryEntry {
  /** The operation index at which this version was replaced. */
  replacedAt: number;
  version: Version;
}

const READS = new Set<FaultOp>(["get", "stat", "list"]);

/** Wraps `inner` with seeded faults (see the module comment). */
export function createFaultyDriver(inner: StorageDriver, options: FaultyDriverOptions): FaultyDriver {
  const random = mulberry32(options.seed);
  const rates = options.rates ?? {};
  const disturbed = new Set<FaultOp>(options.ops ?? ["get", "put", "stat", "list", "delete", "createMultipart", "uploadPart", "complete", "abort", "copy"]);
  const maxLatencyMs = options.maxLatencyMs ?? 5;
  const timeoutMs = options.timeoutMs ?? 20;
  const staleWindow = options.staleWindow ?? 16;
  const staleMaxBytes = options.staleMaxBytes ?? 256 * 1024;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const keepHistory = (rates.stale ?? 0) > 0;
  const history = new Map<string, HistoryEntry[]>();

  const stats: FaultStats = {
    operations: 0,
    byOp: { get: 0, put: 0, stat: 0, list: 0, delete: 0, createMultipart: 0, uploadPart: 0, complete: 0, abort: 0, copy: 0 },
    faults: { failBefore: 0, failAfter: 0, latency: 0, timeout: 0, stale: 0, crash: 0 },
  };
  let enabled = true;
  let crashedAt: number | undefined;

  const chance = (rate: number | undefined): boolean => rate !== undefined && rate > 0 && random() < rate;
  const unavailable = (path: string, kind: InjectedFault["kind"], op: FaultOp, tookEffect: boolean) =>
    new StorageUnavailableError(path, inner.name, 1, undefined, { cause: new InjectedFault(kind, op, tookEffect) });
  const assertAlive = (): void => {
    if (crashedAt !== undefined) throw new SimulatedCrash(crashedAt);
  };
  /** A store's answer reaching a process that has died meanwhile is never seen. */
  const deliver = <T>(value: T): T => {
    assertAlive();
    return value;
  };

  /**
   * Runs one operation through the fault schedule. `effect` calls the store; `stale` (reads only)
   * returns an older answer, or undefined when there is none to give.
   */
  async function run<T>(op: FaultOp, path: string, effect: () => Promise<T>, stale?: () => Promise<T | undefined>, discard?: () => void): Promise<T> {
    assertAlive();
    const index = ++stats.operations;
    stats.byOp[op]++;
    if (options.crashAt !== undefined && index >= options.crashAt) {
      crashedAt = index;
      stats.faults.crash++;
      if (random() < 0.5) await effect().catch(() => undefined);
      else discard?.();
      throw new SimulatedCrash(index);
    }
    const active = enabled && disturbed.has(op);
    const planned = options.faultAt?.[index];
    if (active && chance(rates.latency)) {
      stats.faults.latency++;
      await sleep(Math.floor(random() * (maxLatencyMs + 1)));
      assertAlive();
    }
    if (planned === "failBefore" || (active && chance(rates.failBefore))) {
      stats.faults.failBefore++;
      discard?.();
      throw unavailable(path, "failBefore", op, false);
    }
    if (planned === "timeout" || (active && chance(rates.timeout))) {
      stats.faults.timeout++;
      // A planned timeout lands (the worse case: the effect is there, the answer is not).
      const tookEffect = planned === "timeout" || random() < 0.5;
      if (tookEffect) await effect().catch(() => undefined);
      else discard?.();
      await sleep(timeoutMs);
      assertAlive();
      throw unavailable(path, "timeout", op, tookEffect);
    }
    if (active && stale && READS.has(op) && chance(rates.stale)) {
      let old: T | undefined;
      try {
        old = await stale();
      } catch (err) {
        // An older state in which the key was absent: PathNotFoundError, as the store would say.
        stats.faults.stale++;
        assertAlive();
        throw err;
      }
      if (old !== undefined) {
        stats.faults.stale++;
        return deliver(old);
      }
    }
    const failAfter = planned === "failAfter" || (active && chance(rates.failAfter));
    const result = await effect().then(deliver, (err: unknown) => {
      assertAlive();
      throw err;
    });
    if (failAfter) {
      stats.faults.failAfter++;
      throw unavailable(path, "failAfter", op, true);
    }
    return result;
  }

  /** Remembers the state of `key` as it was before a write the caller is about to make. */
  async function remember(key: string): Promise<void> {
    if (!keepHistory) return;
    let version: Version;
    try {
      const info = await inner.stat(key);
      const bytes = info.size <= staleMaxBytes ? await readAll((await inner.get(key)).body) : undefined;
      version = { absent: false, info, bytes };
    } catch (err) {
      if (!(err instanceof PathNotFoundError)) return;
      version = { absent: true };
    }
    const entries = history.get(key) ?? [];
    entries.push({ replacedAt: stats.operations, version });
    history.set(key, entries);
  }

  /** Runs a write to `keys`, keeping their earlier states for stale reads. */
  const writing = async <T>(keys: string[], effect: () => Promise<T>): Promise<T> => {
    if (!keepHistory) return effect();
    for (const k of keys) await remember(k);
    return effect();
  };

  /** The versions of `key` replaced within the stale window, oldest first. */
  const recent = (key: string): HistoryEntry[] => {
    const entries = history.get(key);
    if (!entries) return [];
    const live = entries.filter((e) => stats.operations - e.replacedAt <= staleWindow);
    if (live.length === 0) history.delete(key);
    else history.set(key, live.slice(-4));
    return live;
  };
  const pick = <E>(items: E[]): E | undefined => items[Math.floor(random() * items.length)];

  const staleVersion = (key: string): Version | undefined => pick(recent(key))?.version;

  const staleInfo = async (key: string): Promise<ObjectInfo | undefined> => {
    const v = staleVersion(key);
    if (!v) return undefined;
    if (v.absent) throw new PathNotFoundError(key, inner.name);
    return v.info;
  };

  const staleGet = async (key: string, range: ByteRange | undefined): Promise<GetResult | undefined> => {
    const v = staleVersion(key);
    if (!v) return undefined;
    if (v.absent) throw new PathNotFoundError(key, inner.name);
    if (!v.bytes) return undefined;
    if (!range) return { ...v.info, body: bytesStream(v.bytes) };
    const r = resolveRange(key, inner.name, v.bytes.length, range);
    return { ...v.info, body: bytesStream(v.bytes.slice(r.offset, r.offset + r.length)), range: r };
  };

  /**
   * A listing that still shows recently deleted keys and misses recently created ones. Only whole
   * listings (one page, no cursor) are disturbed: pages of a stale listing would need a consistent
   * snapshot to paginate, and the upload prefixes listed here fit one page.
   */
  const staleList = async (prefix: string, listOptions: Parameters<StorageDriver["list"]>[1]): Promise<ListResult | undefined> => {
    if (listOptions?.cursor !== undefined) return undefined;
    const changed = [...history.keys()].filter((k) => k.startsWith(prefix) && recent(k).length > 0);
    if (changed.length === 0) return undefined;
    const page = await inner.list(prefix, listOptions);
    if (page.cursor !== undefined) return undefined;
    const keys = new Set(page.keys);
    for (const k of changed) {
      const v = staleVersion(k);
      if (!v) continue;
      if (v.absent) keys.delete(k);
      else keys.add(k);
    }
    return { keys: [...keys].sort() };
  };

  /** A body that will never be sent is cancelled, so its source (often another object's GET) is released. */
  const cancelBody = (body: PutBody) => () => {
    if (isSizedStream(body)) body.stream.cancel().catch(() => undefined);
  };

  const wrapUpload = (mp: MultipartUpload): MultipartUpload => ({
    key: mp.key,
    uploadId: mp.uploadId,
    uploadPart: (partNumber, body) => run("uploadPart", mp.key, () => mp.uploadPart(partNumber, body), undefined, cancelBody(body)),
    complete: (parts) => run("complete", mp.key, () => writing([mp.key], () => mp.complete(parts))),
    abort: () => run("abort", mp.key, () => mp.abort()),
  });

  const driver: FaultyDriver = {
    name: inner.name,
    stats,
    get crashed() {
      return crashedAt !== undefined;
    },
    crash() {
      if (crashedAt === undefined) {
        crashedAt = stats.operations;
        stats.faults.crash++;
      }
    },
    setEnabled(on) {
      enabled = on;
    },
    get: (key, o) =>
      run(
        "get",
        key,
        () => inner.get(key, o),
        () => staleGet(key, o?.range),
      ),
    put: (key, body, o) => run("put", key, () => writing([key], () => inner.put(key, body, o)), undefined, cancelBody(body)),
    stat: (key) =>
      run(
        "stat",
        key,
        () => inner.stat(key),
        () => staleInfo(key),
      ),
    list: (prefix, o) =>
      run(
        "list",
        prefix,
        () => inner.list(prefix, o),
        () => staleList(prefix, o),
      ),
    delete: (...keys) => run("delete", keys.join(","), () => writing(keys, () => inner.delete(...keys))),
    createMultipart: async (key) => wrapUpload(await run("createMultipart", key, () => inner.createMultipart(key))),
    resumeMultipart: (key, uploadId) => {
      assertAlive();
      return wrapUpload(inner.resumeMultipart(key, uploadId));
    },
  };
  const copy = inner.copy?.bind(inner);
  if (copy) driver.copy = (from, to) => run("copy", from, () => writing([to], () => copy(from, to)));
  return driver;
}

/** A range resolved against a stale version's size, the way the memory driver and R2 resolve it. */
function resolveRange(key: string, driver: string, size: number, range: ByteRange): { offset: number; length: number } {
  if ("suffix" in range) {
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  if (range.offset >= size && !(size === 0 && range.offset === 0)) throw new InvalidRangeError(key, driver, range);
  const length = Math.min(range.length ?? size - range.offset, size - range.offset);
  return { offset: range.offset, length };
}
