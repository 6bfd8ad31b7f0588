/**
 * Driver wrappers for tests: one that records every operation (to prove what was, and was not,
 * read or written), one that lies like an eventually consistent store (not found, or stale
 * bytes, for the first k reads of chosen keys), and one that holds part uploads back on a gate
 * (to show what the writer does while a part is in flight).
 */
import { bytesStream, isSizedStream } from "./body.ts";
import { PathNotFoundError, type MultipartUpload, type StorageDriver } from "./driver.ts";

export interface RecordedOp {
  op: "get" | "put" | "stat" | "list" | "delete" | "createMultipart" | "uploadPart" | "complete" | "abort" | "copy";
  key: string;
  /** Bytes sent (put, uploadPart) or asked for (get: the range length, or -1 for a whole object). */
  bytes?: number;
}

/** Wraps `driver`, appending each call to `ops`. */
export function recordingDriver(driver: StorageDriver, ops: RecordedOp[] = []): StorageDriver & { ops: RecordedOp[] } {
  const sizeOf = (body: Uint8Array | string | { length: number }) => (typeof body === "string" ? new TextEncoder().encode(body).length : body.length);
  const wrap = (mp: MultipartUpload): MultipartUpload => ({
    key: mp.key,
    uploadId: mp.uploadId,
    uploadPart: (n, body) => (ops.push({ op: "uploadPart", key: mp.key, bytes: isSizedStream(body) ? body.length : body.length }), mp.uploadPart(n, body)),
    complete: (parts) => (ops.push({ op: "complete", key: mp.key }), mp.complete(parts)),
    abort: () => (ops.push({ op: "abort", key: mp.key }), mp.abort()),
  });
  const wrapped: StorageDriver & { ops: RecordedOp[] } = {
    ops,
    name: driver.name,
    get: (key, o) => {
      const range = o?.range;
      ops.push({ op: "get", key, bytes: range && "length" in range && range.length !== undefined ? range.length : -1 });
      return driver.get(key, o);
    },
    put: (key, body, o) => (ops.push({ op: "put", key, bytes: sizeOf(body) }), driver.put(key, body, o)),
    stat: (key) => (ops.push({ op: "stat", key }), driver.stat(key)),
    list: (prefix, o) => (ops.push({ op: "list", key: prefix }), driver.list(prefix, o)),
    delete: (...keys) => (keys.forEach((key) => ops.push({ op: "delete", key })), driver.delete(...keys)),
    createMultipart: async (key) => (ops.push({ op: "createMultipart", key }), wrap(await driver.createMultipart(key))),
    resumeMultipart: (key, id) => wrap(driver.resumeMultipart(key, id)),
  };
  const copy = driver.copy?.bind(driver);
  if (copy) wrapped.copy = (from, to) => (ops.push({ op: "copy", key: to }), copy(from, to));
  return wrapped;
}

export interface LyingOptions {
  /** Which keys the store lies about. */
  matches: (key: string) => boolean;
  /** How many reads (stat and get each count) of matching keys are answered wrongly. */
  times: number;
  /** "missing": PathNotFoundError; "stale": the object looks one byte shorter and its bytes are zeros. */
  mode: "missing" | "stale";
  /** Which reads lie (default both). */
  reads?: "stat" | "get" | "both";
}

/**
 * Like an eventually consistent store right after a write: the first `times` reads of matching
 * keys answer not-found or stale data, then the truth. `lies()` tells how many were told.
 */
export function lyingDriver(driver: StorageDriver, options: LyingOptions): StorageDriver & { lies(): number } {
  let told = 0;
  const lie = (key: string, read: "stat" | "get") =>
    (options.reads ?? "both") !== (read === "stat" ? "get" : "stat") && options.matches(key) && told < options.times && ++told > 0;
  return {
    ...driver,
    lies: () => told,
    async stat(key) {
      if (!lie(key, "stat")) return driver.stat(key);
      if (options.mode === "missing") throw new PathNotFoundError(key, driver.name);
      const info = await driver.stat(key);
      return { ...info, size: Math.max(0, info.size - 1) };
    },
    async get(key, o) {
      if (!lie(key, "get")) return driver.get(key, o);
      if (options.mode === "missing") throw new PathNotFoundError(key, driver.name);
      const real = await driver.get(key, o);
      await real.body.cancel();
      const length = real.range ? real.range.length : real.size;
      return { ...real, body: bytesStream(new Uint8Array(length)) };
    },
  };
}

/** Wraps `driver` so each uploadPart first waits for `gate(partNumber)`; `calls` lists the part numbers asked for. */
export function gatedDriver(driver: StorageDriver, gate: (partNumber: number) => Promise<void>): { driver: StorageDriver; calls: number[] } {
  const calls: number[] = [];
  const wrap = (mp: MultipartUpload): MultipartUpload => ({
    key: mp.key,
    uploadId: mp.uploadId,
    uploadPart: async (n, body) => {
      calls.push(n);
      await gate(n);
      return mp.uploadPart(n, body);
    },
    complete: (parts) => mp.complete(parts),
    abort: () => mp.abort(),
  });
  const gated: StorageDriver = {
    ...driver,
    createMultipart: async (key) => wrap(await driver.createMultipart(key)),
    resumeMultipart: (key, id) => wrap(driver.resumeMultipart(key, id)),
  };
  return { driver: gated, calls };
}
