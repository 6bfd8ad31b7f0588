/**
 * What the steps of one upload session share (./session.ts for requests, ./finish.ts for the
 * finish, cleanup and alarm): the stores, the config, the record's persistence, and the writer
 * cached between requests.
 */
import type { StorageDriver } from "../storage/driver.ts";
import {
  HashStateUnavailableError,
  StaleUploadReadError,
  UploadUnknownError,
  resumeUploadWriter,
  type UploadWriter,
  type WriterOptions,
} from "../writer/index.ts";
import type { UploadCompletedEvent } from "../events.ts";
import { RECORD_KEY, nextAlarm, type EventTarget, type SessionRecord, type SessionStorage } from "./record.ts";

/** The part of the worker's config (edge/config.ts EdgeConfig) a session uses. */
export interface SessionConfig {
  partSize: number;
  maxPatchSize: number;
  uploadTtlSeconds: number;
  bodyIdleTimeoutMs: number;
}

/** Calls out of the session, for what lives outside one upload (namespace limits, completion events). */
export interface SessionHooks {
  /** The upload is finished (called once per finish; may be called again after a crash: be idempotent). */
  finished?(record: SessionRecord): Promise<void>;
  /** The upload is gone without a blob (cancelled, expired, failed verification). Idempotent too. */
  closed?(record: SessionRecord): Promise<void>;
  /**
   * Where this upload's completion event must go; asked once, when the finish is recorded, and
   * written into that same record (./finish.ts markFinished). None: no event is owed.
   */
  eventTargets?(): EventTarget[];
  /** Delivers the event to one target; a throw leaves that target owed, for the alarm to retry. */
  deliver?(target: EventTarget, event: UploadCompletedEvent): Promise<void>;
}

export class SessionContext {
  /** The writer of the last request, while its state is the committed one; dropped after any failure. */
  writer: UploadWriter | undefined;

  constructor(
    readonly driver: StorageDriver,
    readonly storage: SessionStorage,
    readonly config: SessionConfig,
    readonly writerOptions: WriterOptions,
    readonly hooks: SessionHooks,
    readonly now: () => number,
  ) {}

  record(): Promise<SessionRecord | undefined> {
    return this.storage.get<SessionRecord>(RECORD_KEY);
  }

  /** Saves the record and points the alarm at the next thing to do (work pending soon, else expiry). */
  async save(record: SessionRecord): Promise<void> {
    await this.storage.put(RECORD_KEY, record);
    await this.storage.setAlarm(nextAlarm(record, this.now()));
  }

  /** Expiry counts from the last write. */
  async touch(record: SessionRecord): Promise<void> {
    record.expiresAt = this.now() + this.config.uploadTtlSeconds * 1000;
    await this.save(record);
  }

  /** Forgets the upload: record and alarm gone, its namespace slot freed. */
  async forget(record: SessionRecord): Promise<void> {
    this.writer = undefined;
    await this.storage.deleteAlarm();
    await this.storage.deleteAll();
    await this.hooks.closed?.(record);
  }

  /**
   * The cached writer, or one resumed from the bucket. An upload whose bytes can no longer be
   * verified is removed here (HashStateUnavailableError: 410, the client starts again).
   */
  async writerFor(record: SessionRecord): Promise<UploadWriter> {
    if (this.writer) return this.writer;
    let writer: UploadWriter;
    try {
      const ref = { namespace: record.namespace, id: record.id };
      writer = await resumeUploadWriter(this.driver, ref, { ...this.writerOptions, ...(record.created ? { exists: true } : {}) });
    } catch (err) {
      // Our record says the keys were written: their absence is the store's fault (a stale
      // read, a lost bucket), not the client's. 404 would make tus clients start from zero.
      if (err instanceof UploadUnknownError && record.created) throw new StaleUploadReadError(record.id, record.committed ?? 0, undefined, { cause: err });
      throw err;
    }
    if (writer.offset < (record.committed ?? 0)) throw new StaleUploadReadError(record.id, record.committed ?? 0, writer.offset);
    if (!writer.verifiable) {
      await writer.cancel();
      await this.forget(record);
      throw new HashStateUnavailableError(record.id);
    }
    this.writer = writer;
    return writer;
  }
}
