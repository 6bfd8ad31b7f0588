/**
 * One Durable Object per upload (its id is the upload id). It serialises every request for the
 * upload through one queue, so a crashed tab's half-open PATCH and the resumed tab's PATCH never
 * interleave: the second waits, then sees the committed offset and gets 409 if it moved. It
 * remembers what the bucket cannot tell cheaply or at all once the upload is finished: the owning
 * namespace (another namespace gets 404), the expiry, and after the finish {length, digest} until
 * the upload expires, so a client that crashed after its last byte sees its upload complete.
 *
 * Errors are returned as data (Outcome), not thrown: RPC keeps only an Error's message.
 */
import { DurableObject } from "cloudflare:workers";
import type { Sha256Digest } from "../shared/digest.ts";
import type { TusChecksumAlgorithm } from "../shared/protocol.ts";
import { getConfig, type EdgeConfig } from "./config.ts";
import type { Env } from "./env.ts";
import { ApiError, type Outcome } from "./errors.ts";
import { bodyChunks } from "./body-chunks.ts";
import {
  BodyTooLargeError,
  ChecksumMismatchError,
  DigestConflictError,
  DigestMismatchError,
  UploadTooLargeError,
  UploadUnknownError,
  createUploadWriter,
  driverFor,
  isLinked,
  removeStaleUploadKeys,
  resumeUploadWriter,
  type UploadWriter,
} from "./store.ts";

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
  /** Set once the upload is finished: the blob is at /blobs/<digest>. */
  digest?: Sha256Digest;
  metadata?: string;
}

/** What the object keeps in its own storage. */
interface UploadRecord {
  id: string;
  namespace: string;
  length: number;
  declaredDigest?: Sha256Digest;
  metadata: string;
  expiresAt: number;
  finished?: { digest: Sha256Digest };
}

const RECORD = "upload";

export class UploadObject extends DurableObject<Env> {
  /** The writer of the request holding the queue; only queued code assigns it. */
  #writer: UploadWriter | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** Clock, replaceable in tests (runInDurableObject) to reach expiry without waiting. */
  now: () => number = () => Date.now();

  /** Runs `fn` after every earlier queued call has settled; the per-upload lock. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  get #config(): EdgeConfig {
    return getConfig(this.env);
  }

  async #record(): Promise<UploadRecord | undefined> {
    return this.ctx.storage.get<UploadRecord>(RECORD);
  }

  async #save(record: UploadRecord): Promise<void> {
    await this.ctx.storage.put(RECORD, record);
    // Forget the record (and purge what is left) once the upload expires, even without the cron.
    await this.ctx.storage.setAlarm(record.expiresAt);
  }

  /** The record if it belongs to `namespace` and has not expired; 404 / 410 otherwise. */
  async #owned(namespace: string): Promise<UploadRecord> {
    const record = await this.#record();
    if (!record || record.namespace !== namespace) throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
    if (this.now() >= record.expiresAt) throw new ApiError(410, "UPLOAD_EXPIRED", "upload expired");
    return record;
  }

  async #writerFor(record: UploadRecord): Promise<UploadWriter> {
    if (!this.#writer) {
      try {
        this.#writer = await resumeUploadWriter(driverFor(this.env), { namespace: record.namespace, id: record.id }, { partSize: this.#config.partSize });
      } catch (err) {
        if (err instanceof UploadUnknownError) throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
        throw err;
      }
    }
    return this.#writer;
  }

  #status(record: UploadRecord, offset: number): UploadStatus {
    return {
      offset: record.finished ? record.length : offset,
      length: record.length,
      expiresAt: record.expiresAt,
      ...(record.finished ? { digest: record.finished.digest } : {}),
      ...(record.metadata ? { metadata: record.metadata } : {}),
    };
  }

  /** POST /files: dedupe against the namespace's blobs, else a new writer (and the creation body). */
  create(req: CreateRequest): Promise<Outcome<UploadStatus>> {
    return this.#outcome(() =>
      this.#serial(async () => {
        if (await this.#record()) throw new ApiError(409, "BAD_REQUEST", "upload exists");
        const record: UploadRecord = {
          id: req.id,
          namespace: req.namespace,
          length: req.length,
          metadata: req.metadata,
          expiresAt: this.now() + this.#config.uploadTtlSeconds * 1000,
          ...(req.declaredDigest ? { declaredDigest: req.declaredDigest } : {}),
        };
        const driver = driverFor(this.env);
        if (req.declaredDigest) {
          const linked = await isLinked(driver, req.namespace, req.declaredDigest);
          if (linked !== undefined) {
            if (linked.size !== req.length) {
              throw new ApiError(400, "DIGEST_INVALID", `blob ${req.declaredDigest} is ${linked.size} bytes, not Upload-Length ${req.length}`, {
                details: { expected: req.declaredDigest },
              });
            }
            await req.write?.body?.cancel();
            record.finished = { digest: req.declaredDigest };
            await this.#save(record);
            return this.#status(record, req.length);
          }
        }
        try {
          this.#writer = await createUploadWriter(
            driver,
            { namespace: req.namespace, id: req.id, length: req.length, ...(req.declaredDigest ? { declaredDigest: req.declaredDigest } : {}) },
            { partSize: this.#config.partSize },
          );
        } catch (err) {
          // 10,000 parts of PART_SIZE: a smaller limit than Tus-Max-Size when PART_SIZE is small.
          if (err instanceof UploadTooLargeError) throw new ApiError(413, "UPLOAD_TOO_LARGE", `Upload-Length over ${err.max} bytes (10,000 parts of ${this.#config.partSize})`);
          throw err;
        }
        await this.#save(record);
        if (req.write) return this.#write(record, req.write);
        if (req.length === 0) return this.#finish(record, this.#writer);
        return this.#status(record, 0);
      }),
    );
  }

  /**
   * HEAD: the committed offset. Needs no lock when a writer is cached (its offset only ever moves
   * to a committed value) or the upload is finished, so HEAD answers even while a PATCH is open.
   */
  head(namespace: string): Promise<Outcome<UploadStatus>> {
    return this.#outcome(async () => {
      const record = await this.#owned(namespace);
      if (record.finished) return this.#status(record, record.length);
      if (this.#writer) return this.#status(record, this.#writer.offset);
      return this.#serial(async () => {
        const current = await this.#owned(namespace);
        if (current.finished) return this.#status(current, current.length);
        return this.#status(current, (await this.#writerFor(current)).offset);
      });
    });
  }

  /** PATCH: append at the committed offset, finish when the last byte arrives. */
  patch(namespace: string, req: WriteRequest): Promise<Outcome<UploadStatus>> {
    return this.#outcome(() =>
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
  terminate(namespace: string): Promise<Outcome<null>> {
    return this.#outcome(() =>
      this.#serial(async () => {
        const record = await this.#owned(namespace);
        await this.#remove(record);
        return null;
      }),
    );
  }

  /**
   * Scheduled purge: removes the upload's keys (multipart aborted) and forgets it when it has
   * expired at `nowMs`. `found` is what the bucket listing saw, for uploads this object never
   * recorded (a creation that failed half-way). Returns whether anything was purged.
   */
  purge(nowMs: number, found?: { namespace: string; id: string }): Promise<boolean> {
    return this.#serial(async () => {
      const record = await this.#record();
      const ttlMs = this.#config.uploadTtlSeconds * 1000;
      if (record) {
        if (nowMs < record.expiresAt) return false;
        await this.#remove(record);
        return true;
      }
      if (!found) return false;
      const driver = driverFor(this.env);
      try {
        const writer = await resumeUploadWriter(driver, found, { partSize: this.#config.partSize });
        if (nowMs < Date.parse(writer.lastWriteAt) + ttlMs) return false;
        await writer.cancel();
      } catch (err) {
        if (!(err instanceof UploadUnknownError)) throw err;
        // Not even resumable: judge by the newest key's age, then remove the keys.
        if (!(await removeStaleUploadKeys(driver, found, nowMs - ttlMs))) return false;
      }
      return true;
    });
  }

  override async alarm(): Promise<void> {
    const record = await this.#record();
    if (!record) return;
    if (this.now() < record.expiresAt) {
      await this.ctx.storage.setAlarm(record.expiresAt);
      return;
    }
    await this.purge(this.now());
  }

  async #remove(record: UploadRecord): Promise<void> {
    if (!record.finished) {
      try {
        await (await this.#writerFor(record)).cancel();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err; // already gone from the bucket
        await removeStaleUploadKeys(driverFor(this.env), record, Number.POSITIVE_INFINITY);
      }
    }
    this.#writer = undefined;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  async #write(record: UploadRecord, req: WriteRequest): Promise<UploadStatus> {
    if (req.reprDigest) {
      if (record.declaredDigest && record.declaredDigest !== req.reprDigest) {
        throw new ApiError(400, "DIGEST_MALFORMED", `Repr-Digest ${req.reprDigest} differs from the digest declared at creation`);
      }
    }
    if (record.finished) {
      // A retry of the completing PATCH after its answer was lost: nothing left to send.
      if (req.offset !== record.length) throw offsetMismatch(record.length);
      if (req.contentLength !== 0) throw tooLarge(req.contentLength ?? 1, 0);
      return this.#status(record, record.length);
    }
    const writer = await this.#writerFor(record);
    if (req.offset !== writer.offset) throw offsetMismatch(writer.offset);
    const remaining = record.length - writer.offset;
    if (req.contentLength !== null && req.contentLength > remaining) throw tooLarge(req.contentLength, remaining);
    if (req.reprDigest && !record.declaredDigest) {
      // Declared before the last PATCH (a client that hashed while uploading): the writer moves
      // what is stored to the blob path now, so the finish has nothing to copy. On the last PATCH
      // that would be the same copy before the body instead of after it: leave it to the finish.
      const last = req.contentLength !== null && writer.offset + req.contentLength === record.length;
      if (!last) {
        // A client that hashed while uploading may find out only now that the blob is here
        // already: the upload is complete at once, as a creation with that digest would be.
        const linked = await isLinked(driverFor(this.env), record.namespace, req.reprDigest);
        if (linked !== undefined && linked.size === record.length) return this.#completeLinked(record, writer, req.reprDigest, req.body);
        try {
          await writer.declareDigest(req.reprDigest);
        } catch (err) {
          // Declared already in the writer's record (this object's own record was not saved).
          if (err instanceof DigestConflictError) throw new ApiError(400, "DIGEST_MALFORMED", err.message);
          this.#writer = undefined; // a move cut short is completed by the next writer from storage
          throw err;
        }
      }
      record.declaredDigest = req.reprDigest;
      await this.#save(record);
    }
    if (req.body && req.contentLength !== 0) {
      const config = this.#config;
      try {
        await writer.write(bodyChunks(req.body, { idleMs: config.bodyIdleTimeoutMs }), {
          // Without Content-Length the size is only known at the end: keep nothing until then, so
          // an oversized body leaves the upload as it was. Same for a per-request checksum.
          transactional: req.checksum !== undefined || req.contentLength === null,
          maxBytes: Math.min(remaining, config.maxPatchSize),
          ...(req.checksum ? { checksum: req.checksum } : {}),
        });
      } catch (err) {
        // The writer committed what it could; re-read its state on the next request.
        this.#writer = undefined;
        await this.#touch(record);
        if (err instanceof ChecksumMismatchError) throw new ApiError(460 as 400, "CHECKSUM_MISMATCH", "Upload-Checksum does not match the body; nothing kept");
        if (err instanceof BodyTooLargeError) throw tooLarge(null, remaining);
        throw new ApiError(400, "BAD_REQUEST", "request body ended early; HEAD for the committed offset and resume", { cause: err });
      }
      await this.#touch(record);
    }
    if (writer.offset === record.length) return this.#finish(record, writer);
    return this.#status(record, writer.offset);
  }

  /**
   * Finishes an upload whose declared blob is already linked in its namespace: the parts stored
   * are dropped and the rest is never sent. This PATCH's body is read to its end and discarded
   * (a response before the body is taken in can reach a client as a reset connection).
   */
  async #completeLinked(record: UploadRecord, writer: UploadWriter, digest: Sha256Digest, body: ReadableStream<Uint8Array> | null): Promise<UploadStatus> {
    await writer.cancel();
    this.#writer = undefined;
    record.declaredDigest = digest;
    record.finished = { digest };
    await this.#touch(record);
    // At most what the upload could still have taken (a body without Content-Length is not
    // sized); a body that breaks off changes nothing now.
    let room = Math.min(record.length - writer.offset, this.#config.maxPatchSize);
    try {
      if (body) {
        for await (const chunk of bodyChunks(body, { idleMs: this.#config.bodyIdleTimeoutMs })) {
          room -= chunk.length;
          if (room < 0) break; // the caller cancels the rest
        }
      }
    } catch {
      // the client went away or stalled: the upload is complete all the same
    }
    return this.#status(record, record.length);
  }

  /** Expiry counts from the last write. */
  async #touch(record: UploadRecord): Promise<void> {
    record.expiresAt = this.now() + this.#config.uploadTtlSeconds * 1000;
    await this.#save(record);
  }

  async #finish(record: UploadRecord, writer: UploadWriter): Promise<UploadStatus> {
    try {
      const { digest } = await writer.finish(record.declaredDigest);
      record.finished = { digest };
      this.#writer = undefined;
      await this.#touch(record);
      return this.#status(record, record.length);
    } catch (err) {
      if (err instanceof DigestMismatchError) {
        // The writer removed the upload's resources; nothing is at a blob path. Forget it.
        this.#writer = undefined;
        await this.ctx.storage.deleteAlarm();
        await this.ctx.storage.deleteAll();
        throw new ApiError(400, "DIGEST_INVALID", `upload digest ${err.actual} does not match the declared ${err.expected}`, {
          details: { expected: err.expected, actual: err.actual },
        });
      }
      this.#writer = undefined;
      throw err;
    }
  }

  async #outcome<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
    try {
      return { ok: true, value: await fn() };
    } catch (err) {
      if (err instanceof ApiError) return { ok: false, error: err.toData() };
      console.error("upload object error", err);
      return { ok: false, error: new ApiError(500, "INTERNAL", "internal error").toData() };
    }
  }
}

function offsetMismatch(current: number): ApiError {
  return new ApiError(409, "OFFSET_MISMATCH", `Upload-Offset must be ${current}`, { details: { offset: current }, headers: { "Upload-Offset": String(current) } });
}

function tooLarge(bodyLength: number | null, remaining: number): ApiError {
  return new ApiError(413, "UPLOAD_TOO_LARGE", `request body${bodyLength === null ? "" : ` of ${bodyLength} bytes`} exceeds the ${remaining} bytes left of Upload-Length`);
}
