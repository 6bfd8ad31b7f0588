/**
 * One upload's request handling, over a storage driver and a small durable key-value store (a
 * Durable Object's `ctx.storage` in production, memory in tests): the per-upload queue, the tus
 * offset rules, ownership and expiry, and the finish as one recoverable state. No HTTP and no
 * `cloudflare:workers` here, so the chaos tests run it in Node, crash it between any two steps and
 * start a new session on the same stores, as a restarted Durable Object would.
 *
 * The finish rule (docs/http-api.md, "Finishing"; the steps are in ./finish.ts). An upload whose bytes are all committed but
 * whose blob is not yet verified and linked is a state of its own, "finishing": its offset is
 * NEVER reported as the length until the finish is done. Every request that meets that state
 * (HEAD, PATCH, the alarm) first drives the finish to its end, and answers the finished result
 * (Upload-Offset = length with the digest), or a 503 when the store fails meanwhile; a client
 * therefore never takes a crashed finish for success. The steps (validate -> move -> link ->
 * record finished -> remove the upload's keys) are each safe to repeat, and `finished` is recorded
 * before anything is removed, so a crash at any point converges on the next request or alarm.
 *
 * Record writes come first in every change: the session's record (./record.ts) is the commit point
 * for what the bucket cannot tell (owner, expiry, the finished digest after the upload's keys are
 * gone).
 */
import type { Sha256Digest } from "../../shared/digest.ts";
import type { TusChecksumAlgorithm } from "../../shared/protocol.ts";
import { ApiError, toApiError } from "../http/errors.ts";
import { removeStaleUploadKeys, removeUploadKeys } from "../registry/blobs.ts";
import type { StorageDriver } from "../storage/driver.ts";
import { readBody } from "../writer/body-chunks.ts";
import { UploadUnknownError, createUploadWriter, resumeUploadWriter, type UploadWriter, type WriterOptions } from "../writer/index.ts";
import { SessionContext, type SessionConfig, type SessionHooks } from "./context.ts";
import { findDuplicate, finish, finishLinked, markFinished, remove, runAlarm, type Duplicate } from "./finish.ts";
import type { SessionRecord, SessionStorage } from "./record.ts";

/** The body part of a PATCH or of a creation-with-upload POST. */
export interface WriteRequest {
  /** The client's Upload-Offset. */
  offset: number;
  /** Content-Length, null when the body is chunked (then the write is transactional). */
  contentLength: number | null;
  body: ReadableStream<Uint8Array> | null;
  checksum?: { algorithm: TusChecksumAlgorithm; expected: Uint8Array } | undefined;
  /** Repr-Digest of the whole upload sent with this request. */
  reprDigest?: Sha256Digest;
}

export interface CreateRequest {
  id: string;
  namespace: string;
  length: number;
  declaredDigest?: Sha256Digest;
  /** The raw Upload-Metadata header, echoed on HEAD. */
  metadata: string;
  write?: WriteRequest;
}

/** What POST, HEAD and PATCH report. */
export interface UploadStatus {
  offset: number;
  length: number;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Set once the upload is finished: the blob is verified, at /blobs/<digest> and linked. */
  digest?: Sha256Digest;
  metadata?: string;
}

export interface UploadSessionOptions {
  driver: StorageDriver;
  storage: SessionStorage;
  config: SessionConfig;
  now?: () => number;
  writer?: WriterOptions;
  hooks?: SessionHooks;
}

/** An upload's request handler; one per Durable Object instance. */
export class UploadSession {
  #queue: Promise<unknown> = Promise.resolve();
  #alarmFailures = 0;
  readonly #ctx: SessionContext;

  constructor(opts: UploadSessionOptions) {
    const writerOptions = { ...opts.writer, partSize: opts.config.partSize };
    this.#ctx = new SessionContext(opts.driver, opts.storage, opts.config, writerOptions, opts.hooks ?? {}, () => this.now());
    this.now = opts.now ?? (() => Date.now());
  }

  /** Clock, replaceable in tests to reach expiry without waiting. */
  now: () => number;

  /** Runs `fn` after every earlier queued call has settled; the per-upload lock. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Every error leaves through the one mapping (edge/http/errors.ts). */
  async #mapped<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** The record if it belongs to `namespace` and has not expired; 404 / 410 otherwise. */
  async #owned(namespace: string, opts: { removing?: boolean } = {}): Promise<SessionRecord> {
    const record = await this.#ctx.record();
    if (!record || record.namespace !== namespace) throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
    // A removal (DELETE, expiry) cut short is gone all the same; the alarm, or a DELETE sent
    // again (which is let through to finish it), completes it.
    if (record.removing && !opts.removing) throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
    if (record.removing) return record;
    if (this.now() >= record.expiresAt) throw new ApiError(410, "UPLOAD_EXPIRED", "upload expired");
    return record;
  }

  /** POST /files: dedupe against the namespace's blobs, else a new writer (and the creation body). */
  create(req: CreateRequest): Promise<UploadStatus> {
    return this.#mapped(() =>
      this.#serial(async () => {
        const ctx = this.#ctx;
        if (await ctx.record()) throw new ApiError(409, "UPLOAD_EXISTS", "upload exists");
        const record: SessionRecord = {
          id: req.id,
          namespace: req.namespace,
          length: req.length,
          metadata: req.metadata,
          expiresAt: this.now() + ctx.config.uploadTtlSeconds * 1000,
          ...(req.declaredDigest ? { declaredDigest: req.declaredDigest } : {}),
        };
        const duplicate: Duplicate = req.declaredDigest ? await findDuplicate(ctx, req.namespace, req.declaredDigest, req.length) : { kind: "none" };
        if (duplicate.kind === "other-length") {
          // Refused before a byte is sent: the client can only have declared the wrong digest.
          throw new ApiError(400, "DIGEST_INVALID", `blob ${req.declaredDigest} is ${duplicate.size} bytes, not Upload-Length ${req.length}`, {
            details: { expected: req.declaredDigest },
          });
        }
        if (req.declaredDigest && duplicate.kind === "duplicate") {
          await req.write?.body?.cancel();
          markFinished(ctx, record, req.declaredDigest);
          await ctx.save(record);
          await ctx.hooks.finished?.(record);
          return status(record, req.length);
        }
        // The record first: a crash after the writer's keys exist leaves an upload this object
        // knows (HEAD resumes it, or it expires and is purged), never keys nobody owns.
        await ctx.save(record);
        const init = { namespace: req.namespace, id: req.id, length: req.length, ...(req.declaredDigest ? { declaredDigest: req.declaredDigest } : {}) };
        let writer: UploadWriter;
        try {
          writer = ctx.writer = await createUploadWriter(ctx.driver, init, ctx.writerOptions);
        } catch (err) {
          // Nothing was answered yet, so nobody knows this id: remove what was made of it.
          await removeUploadKeys(ctx.driver, req.namespace, req.id).catch(() => undefined);
          await ctx.forget(record).catch(() => undefined);
          throw err;
        }
        record.created = true;
        await ctx.save(record);
        if (req.write) return this.#write(record, req.write);
        if (req.length === 0) return this.#finish(record, writer);
        return status(record, 0);
      }),
    );
  }

  /**
   * HEAD: the committed offset. Needs no lock when the upload is finished, or when a writer is
   * cached below the length (its offset only ever moves to a committed value), so HEAD answers
   * even while a PATCH is open. An upload with every byte committed but not finished is finished
   * first (in the queue): HEAD never reports offset = length without the blob.
   */
  head(namespace: string): Promise<UploadStatus> {
    return this.#mapped(async () => {
      const record = await this.#owned(namespace);
      const cached = this.#ctx.writer;
      if (record.finished) return status(record, record.length);
      if (cached && cached.offset < record.length) return status(record, cached.offset);
      return this.#serial(async () => {
        const current = await this.#owned(namespace);
        if (current.finished) return status(current, current.length);
        const writer = await this.#ctx.writerFor(current);
        if (writer.offset === current.length) return this.#finish(current, writer);
        await this.#told(current, writer.offset);
        return status(current, writer.offset);
      });
    });
  }

  /** PATCH: append at the committed offset, finish when the last byte arrives. */
  patch(namespace: string, req: WriteRequest): Promise<UploadStatus> {
    return this.#mapped(() =>
      this.#serial(async () => {
        try {
          const record = await this.#owned(namespace);
          return await this.#write(record, req);
        } finally {
          // A body left unread (an early error) must not hold the client's connection open.
          await req.body?.cancel().catch(() => undefined);
        }
      }),
    );
  }

  /** DELETE: abort the multipart, remove every key, forget the upload. */
  terminate(namespace: string): Promise<void> {
    return this.#mapped(() => this.#serial(async () => remove(this.#ctx, await this.#owned(namespace, { removing: true }))));
  }

  /**
   * Scheduled purge: removes the upload's keys (multipart aborted) and forgets it when it has
   * expired at `nowMs`. `found` is what the bucket listing saw, for uploads this object never
   * recorded (a creation that failed half-way). Returns whether anything was purged.
   */
  purge(nowMs: number, found?: { namespace: string; id: string }): Promise<boolean> {
    return this.#serial(async () => {
      const ctx = this.#ctx;
      const record = await ctx.record();
      const ttlMs = ctx.config.uploadTtlSeconds * 1000;
      if (record) {
        if (nowMs < record.expiresAt) return false;
        await remove(ctx, record);
        return true;
      }
      if (!found) return false;
      try {
        const writer = await resumeUploadWriter(ctx.driver, found, ctx.writerOptions);
        if (nowMs < Date.parse(writer.lastWriteAt) + ttlMs) return false;
        await writer.cancel();
      } catch (err) {
        if (!(err instanceof UploadUnknownError)) throw err;
        // Not even resumable: judge by the newest key's age, then remove the keys.
        if (!(await removeStaleUploadKeys(ctx.driver, found, nowMs - ttlMs))) return false;
      }
      return true;
    });
  }

  /** The object's alarm (./finish.ts runAlarm), in the queue like every request. */
  alarm(): Promise<void> {
    return this.#serial(async () => {
      this.#alarmFailures = await runAlarm(this.#ctx, this.#alarmFailures);
    });
  }

  /** Records `offset` as told before a HEAD answers it (./context.ts writerFor refuses to resume below it). */
  async #told(record: SessionRecord, offset: number): Promise<void> {
    if (offset <= (record.committed ?? 0)) return;
    record.committed = offset;
    await this.#ctx.save(record);
  }

  async #finish(record: SessionRecord, writer: UploadWriter): Promise<UploadStatus> {
    await finish(this.#ctx, record, writer);
    return status(record, record.length);
  }

  async #write(record: SessionRecord, req: WriteRequest): Promise<UploadStatus> {
    if (req.reprDigest && record.declaredDigest && record.declaredDigest !== req.reprDigest) {
      throw new ApiError(400, "DIGEST_MALFORMED", `Repr-Digest ${req.reprDigest} differs from the digest declared at creation`);
    }
    if (!record.finished) {
      const writer = await this.#ctx.writerFor(record);
      // Every byte committed, finish not done (a crash or a store fault stopped it): finish
      // first, then answer this request as one to a finished upload.
      if (writer.offset === record.length) await finish(this.#ctx, record, writer);
      else return this.#append(record, writer, req);
    }
    // A retry of the completing PATCH after its answer was lost: nothing left to send.
    if (req.offset !== record.length) throw offsetMismatch(record.length);
    if (req.contentLength !== 0 && req.contentLength !== null) throw tooLarge(req.contentLength, 0);
    return status(record, record.length);
  }

  async #append(record: SessionRecord, writer: UploadWriter, req: WriteRequest): Promise<UploadStatus> {
    const ctx = this.#ctx;
    if (req.offset !== writer.offset) throw offsetMismatch(writer.offset);
    const remaining = record.length - writer.offset;
    if (req.contentLength !== null && req.contentLength > remaining) throw tooLarge(req.contentLength, remaining);
    if (req.reprDigest && !record.declaredDigest) {
      const digest = req.reprDigest;
      if (await this.#declare(record, writer, req.contentLength, digest)) {
        await finishLinked(ctx, record, writer, digest, req.body);
        return status(record, record.length);
      }
    }
    if (req.body && req.contentLength !== 0) {
      if ((req.contentLength === null || req.contentLength === remaining) && !record.finishing) {
        // Armed before the last byte can be committed: if this object dies between that commit
        // and the finish, the alarm finishes the upload even if the client never returns.
        record.finishing = true;
        await ctx.save(record);
      }
      try {
        await writer.write(readBody(req.body, ctx.config.bodyIdleTimeoutMs), {
          // Without Content-Length the size is only known at the end: keep nothing until then, so
          // an oversized body leaves the upload as it was. Same for a per-request checksum.
          transactional: req.checksum !== undefined || req.contentLength === null,
          maxBytes: Math.min(remaining, ctx.config.maxPatchSize),
          ...(req.checksum ? { checksum: req.checksum } : {}),
        });
      } catch (err) {
        // The writer committed what it could; re-read its state on the next request.
        ctx.writer = undefined;
        throw err;
      } finally {
        record.committed = writer.offset;
        await ctx.touch(record);
      }
    }
    if (writer.offset === record.length) return this.#finish(record, writer);
    return status(record, writer.offset);
  }

  /**
   * A digest declared with a PATCH (a client that hashed while uploading). Before the last PATCH
   * the writer moves what is stored to the blob path now, so the finish has nothing to copy; on
   * the last PATCH that would be the same copy before the body instead of after it, so it is left
   * to the finish. Returns true when the blob is linked in the namespace already: the upload is
   * then complete at once, as a creation with that digest would be.
   */
  async #declare(record: SessionRecord, writer: UploadWriter, contentLength: number | null, digest: Sha256Digest): Promise<boolean> {
    const last = contentLength !== null && writer.offset + contentLength === record.length;
    if (!last) {
      // A blob of another length is left to the finish, which verifies the declaration against
      // the bytes (docs/http-api.md): mid-upload the digest is recorded as declared.
      if ((await findDuplicate(this.#ctx, record.namespace, digest, record.length)).kind === "duplicate") return true;
      try {
        await writer.declareDigest(digest);
      } catch (err) {
        this.#ctx.writer = undefined; // a move cut short is completed by the next writer from storage
        throw err;
      }
    }
    record.declaredDigest = digest;
    await this.#ctx.save(record);
    return false;
  }
}

function status(record: SessionRecord, offset: number): UploadStatus {
  return {
    offset: record.finished ? record.length : offset,
    length: record.length,
    expiresAt: record.expiresAt,
    ...(record.finished ? { digest: record.finished.digest } : {}),
    ...(record.metadata ? { metadata: record.metadata } : {}),
  };
}

function offsetMismatch(current: number): ApiError {
  return new ApiError(409, "OFFSET_MISMATCH", `Upload-Offset must be ${current}`, {
    details: { offset: current },
    headers: { "Upload-Offset": String(current) },
  });
}

function tooLarge(bodyLength: number | null, remaining: number): ApiError {
  const body = bodyLength === null ? "" : ` of ${bodyLength} bytes`;
  return new ApiError(413, "UPLOAD_TOO_LARGE", `request body${body} exceeds the ${remaining} bytes left of Upload-Length`);
}
