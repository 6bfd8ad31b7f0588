/**
 * Abuse limits per namespace: how many uploads it may have open (created, not finished,
 * cancelled or expired) and how many bytes those may add up to (the sum of their Upload-Length).
 * A token holder could otherwise open uploads without end, each holding storage (parts, multipart
 * uploads) until it expires.
 *
 * One Durable Object per namespace (`NamespaceObject`, binding NAMESPACES) keeps the reservations
 * in its SQLite storage. Its methods run their SQL synchronously, so a check and the insert it
 * allows cannot interleave with another creation: the limit holds under any concurrency.
 *
 * A reservation is keyed by upload id, so reserving and releasing are idempotent: a retried
 * creation does not count twice, and a finish, a cancel and the expiry alarm may all release the
 * same upload. Each carries the upload's expiry and is dropped once past it, so a release that
 * never happened (a crash, a lost call) can hold a slot for one TTL at most, never for good.
 */
import { DurableObject } from "cloudflare:workers";
import { getConfig } from "./config.ts";
import type { Env } from "./env.ts";
import { ApiError } from "./http/errors.ts";

/** Which limit refused a reservation. */
export type LimitReason = "open-uploads" | "open-bytes";

export type ReserveResult = { ok: true } | { ok: false; retryAfterSeconds: number; reason: LimitReason };

/** The limits a reservation is checked against; the worker passes its own config, the one authority. */
export interface NamespaceLimits {
  maxOpenUploads: number;
  maxOpenBytes: number;
}

/** What a namespace holds now (for tests and operators). */
export interface NamespaceUsage {
  uploads: number;
  bytes: number;
}

/**
 * Retry-After for a refused creation. Nothing says when a client will finish an upload, so this is
 * a polling interval: a minute, or less when the oldest reservation expires sooner.
 */
const MAX_RETRY_AFTER_SECONDS = 60;

export class NamespaceObject extends DurableObject<Env> {
  /** Clock, replaceable in tests (runInDurableObject) to reach expiry without waiting. */
  now: () => number = () => Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS reservations (upload_id TEXT PRIMARY KEY, length INTEGER NOT NULL, expires_at INTEGER NOT NULL)");
  }

  /** Drops reservations past their expiry: the upload is gone or going, whether or not anyone said so. */
  #dropExpired(now: number): void {
    this.ctx.storage.sql.exec("DELETE FROM reservations WHERE expires_at <= ?", now);
  }

  /**
   * Counts `uploadId` (of `length` bytes, open until `expiresAt`, epoch ms) against `limits`.
   * An id already reserved is always ok (its expiry and length are refreshed), so a creation that
   * is retried, or an upload whose expiry moved on, never refuses itself.
   */
  reserve(uploadId: string, length: number, expiresAt: number, limits: NamespaceLimits): ReserveResult {
    const now = this.now();
    this.#dropExpired(now);
    const sql = this.ctx.storage.sql;
    const existing = sql.exec("SELECT upload_id FROM reservations WHERE upload_id = ?", uploadId).toArray();
    if (existing.length > 0) {
      sql.exec("UPDATE reservations SET length = ?, expires_at = ? WHERE upload_id = ?", length, expiresAt, uploadId);
      return { ok: true };
    }
    const usage = this.#usage();
    const reason: LimitReason | undefined =
      usage.uploads + 1 > limits.maxOpenUploads ? "open-uploads" : usage.bytes + length > limits.maxOpenBytes ? "open-bytes" : undefined;
    if (reason) {
      const soonest = sql.exec<{ soonest: number | null }>("SELECT MIN(expires_at) AS soonest FROM reservations").one().soonest;
      const untilExpiry = soonest === null ? 1 : Math.ceil((soonest - now) / 1000);
      return { ok: false, reason, retryAfterSeconds: Math.max(1, Math.min(MAX_RETRY_AFTER_SECONDS, untilExpiry)) };
    }
    sql.exec("INSERT INTO reservations (upload_id, length, expires_at) VALUES (?, ?, ?)", uploadId, length, expiresAt);
    return { ok: true };
  }

  /** Frees `uploadId`'s reservation; true when there was one. Safe to call any number of times. */
  release(uploadId: string): boolean {
    return this.ctx.storage.sql.exec("DELETE FROM reservations WHERE upload_id = ?", uploadId).rowsWritten > 0;
  }

  /** Open uploads and their bytes, expired reservations not counted. */
  usage(): NamespaceUsage {
    this.#dropExpired(this.now());
    return this.#usage();
  }

  #usage(): NamespaceUsage {
    // TOTAL, not SUM: a float sum cannot overflow SQLite's 64-bit integers.
    const row = this.ctx.storage.sql.exec<{ uploads: number; bytes: number }>("SELECT COUNT(*) AS uploads, TOTAL(length) AS bytes FROM reservations").one();
    return { uploads: row.uploads, bytes: row.bytes };
  }
}

/** The namespace's object, or undefined when the worker has no NAMESPACES binding (limits off). */
export function namespaceStub(env: Env, namespace: string): DurableObjectStub<NamespaceObject> | undefined {
  const binding = env.NAMESPACES;
  if (!binding) return undefined;
  return binding.get(binding.idFromName(namespace)) as DurableObjectStub<NamespaceObject>;
}

/**
 * Reserves an upload slot for POST /files; throws the 429 RATE_LIMITED ApiError (with
 * Retry-After) when a limit is reached, 413 when the upload alone is over the bytes limit.
 * Without the NAMESPACES binding it allows everything else.
 */
export async function reserveUpload(env: Env, namespace: string, uploadId: string, length: number, expiresAt: number): Promise<void> {
  const config = getConfig(env);
  if (length > config.maxOpenBytesPerNamespace) {
    // Waiting cannot help an upload larger than the whole allowance: not 429 but 413, as over Tus-Max-Size.
    throw new ApiError(413, "UPLOAD_TOO_LARGE", `Upload-Length exceeds MAX_OPEN_BYTES_PER_NAMESPACE ${config.maxOpenBytesPerNamespace}`);
  }
  const stub = namespaceStub(env, namespace);
  if (!stub) return;
  const limits = { maxOpenUploads: config.maxOpenUploadsPerNamespace, maxOpenBytes: config.maxOpenBytesPerNamespace };
  const result = await stub.reserve(uploadId, length, expiresAt, limits);
  if (result.ok) return;
  const what =
    result.reason === "open-uploads"
      ? `namespace has ${config.maxOpenUploadsPerNamespace} open uploads (MAX_OPEN_UPLOADS_PER_NAMESPACE)`
      : `namespace's open uploads would pass ${config.maxOpenBytesPerNamespace} bytes (MAX_OPEN_BYTES_PER_NAMESPACE)`;
  throw new ApiError(429, "RATE_LIMITED", `${what}; finish or cancel an upload, or retry later`, {
    details: { limit: result.reason },
    headers: { "Retry-After": String(result.retryAfterSeconds) },
  });
}

/**
 * Frees an upload's slot: call it when the upload is finished, cancelled (DELETE), expired or
 * purged. Idempotent. It never throws: a release that fails only holds the slot until the
 * reservation's expiry, which must not fail the finish or cancel that called it. Returns whether
 * a reservation was freed.
 */
export async function releaseReservation(env: Env, namespace: string, uploadId: string): Promise<boolean> {
  try {
    const stub = namespaceStub(env, namespace);
    return stub ? await stub.release(uploadId) : false;
  } catch (err) {
    console.error(`namespace limits: release of ${uploadId} in ${namespace} failed (its slot frees at expiry)`, err);
    return false;
  }
}
