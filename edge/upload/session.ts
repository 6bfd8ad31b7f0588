/**
 * One upload's request handling, over a storage driver and a small durable key-value store (a
 * Durable Object's `ctx.storage` in production, memory in tests): the per-upload queue, the tus
 * offset rules, ownership and expiry, and the finish as one recoverable state. No HTTP and no
 * `cloudflare:workers` here, so the chaos tests run it in Node, crash it between any two steps and
 * start a new session on the same stores, as a restarted Durable Object would.
 *
 * The finish rule (docs/http-api.md, "Finishing"). An upload whose bytes are all committed but
 * whose blob is not yet verified and linked is a state of its own, "finishing": its offset is
 * NEVER reported as the length until the finish is done. Every request that meets that state
 * (HEAD, PATCH, the alarm) first drives the finish to its end, and answers the finished result
 * (Upload-Offset = length with the digest), or a 503 when the store fails meanwhile; a client
 * therefore never takes a crashed finish for success. The steps (validate -> move -> link ->
 * record finished -> remove the upload's keys) are each safe to repeat, and `finished` is recorded
 * before anything is removed, so a crash at any point converges on the next request or alarm.
 *
 * Record writes come first in every change: the object's record is the commit point for what the
 * bucket cannot tell (owner, expiry, the finished digest after the upload's keys are gone).
 */
import type { Sha256Digest } from "../shared/digest.ts";
import type { TusChecksumAlgorithm } from "../shared/protocol.ts";
import { blobMetaFromUploadMetadata, writeBlobMeta } from "./registry/blob-meta.ts";
import { bodyChunks } from "./writer/body-chunks.ts";
import { ApiError, BodyReadError, STORE_RETRY_AFTER_SECONDS, toApiError } from "./http/errors.ts";
import { isLinked, removeStaleUploadKeys, removeUploadKeys } from "./registry/blobs.ts";
import { PathNotFoundError, StorageError, type StorageDriver } from "./storage/driver.ts";
import {
  DigestMismatchError,
  HashStateUnavailableError,
  UploadUnknownError,
  createUploadWriter,
  resumeUploadWriter,
  type UploadWriter,
  type WriterOptions,
} from "./writer/index.ts";

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

/** The part of a Durable Object's `ctx.storage` a session uses. */
export interface SessionStorage {
  get<T>(key: string): Promise<T | undefined>;
  put<T>(key: string, value: T): Promise<void>;
  deleteAll(): Promise<void>;
  getAlarm(): Promise<number | null>;
  setAlarm(epochMs: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** What the session keeps in its storage. */
export interface UploadRecord {
  id: string;
  namespace: string;
  length: number;
  declaredDigest?: Sha256Digest;
  metadata: string;
  expiresAt: number;
  /** Set once the writer's keys exist: from then on a missing `info` is a stale read or a lost store, never "unknown". */
  created?: true;
  /** Set before the upload's keys are removed (DELETE, expiry): a crash half-way still ends in removal. */
  removing?: true;
  /** Set before a write that may bring the offset to the length: the alarm then checks for a finish to drive. */
  finishing?: true;
  /** Recorded after the link and before the upload's keys are removed (the finish's commit point). */
  finished?: { digest: Sha256Digest; at: number };
  /** The upload's keys may still be in the bucket after the finish; the alarm removes them. */
  cleanup?: true;
}

/** Calls out of the session, for what lives outside one upload (namespace limits, completion events). */
export interface SessionHooks {
  /** The upload is finished (called once per finish; may be called again after a crash: be idempotent). */
  finished?(record: UploadRecord): Promise<void>;
  /** The upload is gone without a blob (cancelled, expired, failed verification). Idempotent too. */
  closed?(record: UploadRecord): Promise<void>;
}

/** The part of the worker's config (edge/config.ts EdgeConfig) a session uses. */
export interface SessionConfig {
  partSize: number;
  maxPatchSize: number;
  uploadTtlSeconds: number;
  bodyIdleTimeoutMs: number;
}

export interface UploadSessionOptions {
  driver: StorageDriver;
  storage: SessionStorage;
  config: SessionConfig;
  now?: () => number;
  writer?: WriterOptions;
  hooks?: SessionHooks;
}

const RECORD = "upload";
/** First retry of background work (finish, cleanup) by the alarm; doubled per failure up to ALARM_MAX_DELAY_MS. */
export const ALARM_RETRY_MS = 5_000;
const ALARM_MAX_DELAY_MS = 10 * 60_000;

/** An upload's request handler; one per Durable Object instance. */
export class UploadSession {
  #writer: UploadWriter | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #alarmFailures = 0;
  readonly #driver: StorageDriver;
  readonly #storage: SessionStorage;
  readonly #config: UploadSessionOptions["config"];
  readonly #writerOptions: WriterOptions;
  readonly #hooks: SessionHooks;
  /** Clock, replaceable in tests to reach expiry without waiting. */
  now: () => number;

  constructor(opts: UploadSessionOptions) {
    this.#driver = opts.driver;
    this.#storage = opts.storage;
    this.#config = opts.config;
    this.#writerOptions = { ...opts.writer, partSize: opts.config.partSize };
    this.#hooks = opts.hooks ?? {};
    this.now = opts.now ?? (() => Date.now());
  }

  /** Runs `fn` after every earlier queued call has settled; the per-upload lock. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Every error leaves through the one mapping (edge/errors.ts). */
  async #mapped<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toApiError(err);
    }
  }

  #record(): Promise<UploadRecord | undefined> {
    return this.#storage.get<UploadRecord>(RECORD);
  }

  /** Saves the record and points the alarm at the next thing to do (work pending soon, else expiry). */
  async #save(record: UploadRecord): Promise<void> {
    await this.#storage.put(RECORD, record);
    const pending = record.cleanup === true || (record.finishing === true && !record.finished);
    await this.#storage.setAlarm(pending ? this.now() + ALARM_RETRY_MS : record.expiresAt);
  }

  async #forget(record: UploadRecord): Promise<void> {
    this.#writer = undefined;
    await this.#storage.deleteAlarm();
    await this.#storage.deleteAll();
    await this.#hooks.closed?.(record);
  }

  /** The record if it belongs to `namespace` and has not expired; 404 / 410 otherwise. */
  async #owned(namespace: string): Promise<UploadRecord> {
    const record = await this.#record();
    if (!record || record.namespace !== namespace) throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
    // A removal (DELETE, expiry) cut short is gone all the same; the alarm completes it.
    if (record.removing) throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
    if (this.now() >= record.expiresAt) throw new ApiError(410, "UPLOAD_EXPIRED", "upload expired");
    return record;
  }

  /**
   * The cached writer, or one resumed from the bucket. An upload whose bytes can no longer be
   * verified is removed here (HashStateUnavailableError: 410, the client starts again).
   */
  async #writerFor(record: UploadRecord): Promise<UploadWriter> {
    if (!this.#writer) {
      let writer: UploadWriter;
      try {
        writer = await resumeUploadWriter(this.#driver, { namespace: record.namespace, id: record.id }, { ...this.#writerOptions, ...(record.created ? { exists: true } : {}) });
      } catch (err) {
        // Our record says the keys were written: their absence is the store's fault (a stale
        // read, a lost bucket), not the client's. 404 would make tus clients start from zero.
        if (err instanceof UploadUnknownError && record.created) {
          throw new ApiError(503, "STORAGE_UNAVAILABLE", "the upload's data is not readable in the store right now; nothing was lost: retry", {
            cause: err,
            headers: { "Retry-After": String(STORE_RETRY_AFTER_SECONDS) },
          });
        }
        throw err;
      }
      if (!writer.verifiable) {
        await writer.cancel();
        await this.#forget(record);
        throw new HashStateUnavailableError(record.id);
      }
      this.#writer = writer;
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
  create(req: CreateRequest): Promise<UploadStatus> {
    return this.#mapped(() =>
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
        if (req.declaredDigest) {
          const linked = await isLinked(this.#driver, req.namespace, req.declaredDigest);
          if (linked !== undefined) {
            if (linked.size !== req.length) {
              throw new ApiError(400, "DIGEST_INVALID", `blob ${req.declaredDigest} is ${linked.size} bytes, not Upload-Length ${req.length}`, {
                details: { expected: req.declaredDigest },
              });
            }
            await req.write?.body?.cancel();
            record.finished = { digest: req.declaredDigest, at: this.now() };
            await this.#save(record);
            await this.#hooks.finished?.(record);
            return this.#status(record, req.length);
          }
        }
        // The record first: a crash after the writer's keys exist leaves an upload this object
        // knows (HEAD resumes it, or it expires and is purged), never keys nobody owns.
        await this.#save(record);
        try {
          this.#writer = await createUploadWriter(
            this.#driver,
            { namespace: req.namespace, id: req.id, length: req.length, ...(req.declaredDigest ? { declaredDigest: req.declaredDigest } : {}) },
            this.#writerOptions,
          );
        } catch (err) {
          // Nothing was answered yet, so nobody knows this id: remove what was made of it.
          await removeUploadKeys(this.#driver, req.namespace, req.id).catch(() => undefined);
          await this.#forget(record).catch(() => undefined);
          throw err;
        }
        record.created = true;
        await this.#save(record);
        if (req.write) return this.#write(record, req.write);
        if (req.length === 0) return this.#finish(record, this.#writer);
        return this.#status(record, 0);
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
      if (record.finished) return this.#status(record, record.length);
      if (this.#writer && this.#writer.offset < record.length) return this.#status(record, this.#writer.offset);
      return this.#serial(async () => {
        const current = await this.#owned(namespace);
        if (current.finished) return this.#status(current, current.length);
        const writer = await this.#writerFor(current);
        if (writer.offset === current.length) return this.#finish(current, writer);
        return this.#status(current, writer.offset);
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
    return this.#mapped(() =>
      this.#serial(async () => {
        const record = await this.#owned(namespace);
        await this.#remove(record);
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
      try {
        const writer = await resumeUploadWriter(this.#driver, found, this.#writerOptions);
        if (nowMs < Date.parse(writer.lastWriteAt) + ttlMs) return false;
        await writer.cancel();
      } catch (err) {
        if (!(err instanceof UploadUnknownError)) throw err;
        // Not even resumable: judge by the newest key's age, then remove the keys.
        if (!(await removeStaleUploadKeys(this.#driver, found, nowMs - ttlMs))) return false;
      }
      return true;
    });
  }

  /**
   * The object's alarm: drives a finish nobody came back for, removes keys a finish left behind,
   * purges the upload at expiry. A failure reschedules it with backoff (never thrown: the
   * platform's own alarm retries give up after a few attempts).
   */
  alarm(): Promise<void> {
    return this.#serial(async () => {
      const record = await this.#record();
      if (!record) return;
      try {
        if (record.removing || this.now() >= record.expiresAt) {
          await this.#remove(record);
          return;
        }
        if (record.finished) {
          if (record.cleanup) await this.#cleanup(record);
        } else if (record.finishing) {
          const writer = await this.#writerFor(record);
          if (writer.offset === record.length) await this.#finish(record, writer);
          else {
            delete record.finishing;
            await this.#save(record);
          }
        }
        this.#alarmFailures = 0;
        const current = await this.#record();
        if (current) await this.#storage.setAlarm(current.cleanup ? this.now() + ALARM_RETRY_MS : current.expiresAt);
      } catch (err) {
        this.#writer = undefined;
        if (!(await this.#record())) return; // gone (mismatch, unverifiable): nothing left to do
        console.error(`upload ${record.id}: alarm failed, retrying`, err);
        const delay = Math.min(ALARM_MAX_DELAY_MS, ALARM_RETRY_MS * 2 ** this.#alarmFailures++);
        await this.#storage.setAlarm(this.now() + delay);
      }
    });
  }

  async #remove(record: UploadRecord): Promise<void> {
    this.#writer = undefined;
    if (!record.removing) {
      record.removing = true;
      await this.#storage.put(RECORD, record);
      await this.#storage.setAlarm(this.now() + ALARM_RETRY_MS);
    }
    await this.#removeKeys(record);
    await this.#forget(record);
  }

  /**
   * Aborts the upload's multipart upload (if any is still open) and removes its keys. Safe to
   * repeat and after a finish (aborting a completed multipart upload is not an error); a record
   * too damaged to resume is removed key by key.
   */
  async #removeKeys(record: { namespace: string; id: string }): Promise<void> {
    try {
      await (await resumeUploadWriter(this.#driver, record, this.#writerOptions)).cancel();
    } catch (err) {
      if (err instanceof StorageError && !(err instanceof PathNotFoundError)) throw err;
      await removeStaleUploadKeys(this.#driver, record, Number.POSITIVE_INFINITY);
    }
  }

  async #write(record: UploadRecord, req: WriteRequest): Promise<UploadStatus> {
    if (req.reprDigest && record.declaredDigest && record.declaredDigest !== req.reprDigest) {
      throw new ApiError(400, "DIGEST_MALFORMED", `Repr-Digest ${req.reprDigest} differs from the digest declared at creation`);
    }
    if (!record.finished) {
      const writer = await this.#writerFor(record);
      // Every byte committed, finish not done (a crash or a store fault stopped it): finish
      // first, then answer this request as one to a finished upload.
      if (writer.offset === record.length) await this.#finish(record, writer);
      else return this.#append(record, writer, req);
    }
    // A retry of the completing PATCH after its answer was lost: nothing left to send.
    if (req.offset !== record.length) throw offsetMismatch(record.length);
    if (req.contentLength !== 0 && req.contentLength !== null) throw tooLarge(req.contentLength, 0);
    return this.#status(record, record.length);
  }

  async #append(record: UploadRecord, writer: UploadWriter, req: WriteRequest): Promise<UploadStatus> {
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
        const linked = await isLinked(this.#driver, record.namespace, req.reprDigest);
        if (linked !== undefined && linked.size === record.length) return this.#completeLinked(record, writer, req.reprDigest, req.body);
        try {
          await writer.declareDigest(req.reprDigest);
        } catch (err) {
          this.#writer = undefined; // a move cut short is completed by the next writer from storage
          throw err;
        }
      }
      record.declaredDigest = req.reprDigest;
      await this.#save(record);
    }
    if (req.body && req.contentLength !== 0) {
      const mayComplete = req.contentLength === null || req.contentLength === remaining;
      if (mayComplete && !record.finishing) {
        // Armed before the last byte can be committed: if this object dies between that commit
        // and the finish, the alarm finishes the upload even if the client never returns.
        record.finishing = true;
        await this.#save(record);
      }
      try {
        await writer.write(readBody(req.body, this.#config.bodyIdleTimeoutMs), {
          // Without Content-Length the size is only known at the end: keep nothing until then, so
          // an oversized body leaves the upload as it was. Same for a per-request checksum.
          transactional: req.checksum !== undefined || req.contentLength === null,
          maxBytes: Math.min(remaining, this.#config.maxPatchSize),
          ...(req.checksum ? { checksum: req.checksum } : {}),
        });
      } catch (err) {
        // The writer committed what it could; re-read its state on the next request.
        this.#writer = undefined;
        await this.#touch(record);
        throw err;
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
    const offset = writer.offset;
    record.declaredDigest = digest;
    record.finished = { digest, at: this.now() };
    record.cleanup = true;
    await this.#touch(record);
    await this.#hooks.finished?.(record);
    this.#writer = undefined;
    try {
      await writer.cancel();
      delete record.cleanup;
      await this.#save(record);
    } catch (err) {
      console.error(`upload ${record.id}: complete, but removing its parts failed; the alarm retries`, err);
    }
    // At most what the upload could still have taken (a body without Content-Length is not
    // sized); a body that breaks off changes nothing now.
    let room = Math.min(record.length - offset, this.#config.maxPatchSize);
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

  /**
   * validate -> move -> link -> record finished -> remove. A store fault anywhere leaves the
   * upload "finishing" (the alarm and the next request try again); a removal that fails after
   * the record is written leaves only keys for the alarm to remove: the upload is finished.
   */
  async #finish(record: UploadRecord, writer: UploadWriter): Promise<UploadStatus> {
    try {
      await writer.finish(record.declaredDigest, {
        linked: async ({ digest }) => {
          // What the uploader called the file, for Content-Disposition on GET /blobs.
          await writeBlobMeta(this.#driver, record.namespace, digest, blobMetaFromUploadMetadata(record.metadata));
          record.finished = { digest, at: this.now() };
          record.cleanup = true;
          delete record.finishing;
          await this.#touch(record);
          await this.#hooks.finished?.(record);
        },
      });
    } catch (err) {
      this.#writer = undefined;
      if (err instanceof DigestMismatchError) {
        // The writer removed the upload's resources; nothing is at a blob path. Forget it.
        await this.#forget(record);
        throw err;
      }
      if (err instanceof HashStateUnavailableError) {
        await writer.cancel().catch(() => undefined);
        await this.#forget(record);
        throw err;
      }
      if (!record.finished) throw err;
      console.error(`upload ${record.id}: finished, but removing its keys failed; the alarm retries`, err);
      return this.#status(record, record.length);
    }
    this.#writer = undefined;
    delete record.cleanup;
    await this.#save(record);
    return this.#status(record, record.length);
  }

  async #cleanup(record: UploadRecord): Promise<void> {
    await this.#removeKeys(record);
    delete record.cleanup;
    await this.#save(record);
  }
}

/** The body's chunks, with its own failures (broken off, stalled) told apart from store faults. */
async function* readBody(body: ReadableStream<Uint8Array>, idleMs: number): AsyncGenerator<Uint8Array> {
  const chunks = bodyChunks(body, { idleMs });
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await chunks.next();
    } catch (err) {
      throw new BodyReadError(err);
    }
    if (next.done) return;
    yield next.value;
  }
}

function offsetMismatch(current: number): ApiError {
  return new ApiError(409, "OFFSET_MISMATCH", `Upload-Offset must be ${current}`, { details: { offset: current }, headers: { "Upload-Offset": String(current) } });
}

function tooLarge(bodyLength: number | null, remaining: number): ApiError {
  return new ApiError(413, "UPLOAD_TOO_LARGE", `request body${bodyLength === null ? "" : ` of ${bodyLength} bytes`} exceeds the ${remaining} bytes left of Upload-Length`);
}

/** A SessionStorage in memory, for tests: survives a "crash" when the same instance is reused. */
export function createMemorySessionStorage(): SessionStorage & { readonly alarm: number | null; readonly data: Map<string, unknown> } {
  const data = new Map<string, unknown>();
  let alarm: number | null = null;
  return {
    data,
    get alarm() {
      return alarm;
    },
    async get<T>(key: string) {
      const value = data.get(key);
      return value === undefined ? undefined : (structuredClone(value) as T);
    },
    async put<T>(key: string, value: T) {
      data.set(key, structuredClone(value));
    },
    async deleteAll() {
      data.clear();
    },
    async getAlarm() {
      return alarm;
    },
    async setAlarm(at: number) {
      alarm = at;
    },
    async deleteAlarm() {
      alarm = null;
    },
  };
}
