/**
 * Where uploads are remembered between sessions. The browser keeps records in IndexedDB
 * (idb.ts), Node in JSON files (files.ts); tests use the memory store.
 * Records are versioned: one from another format version is dropped on load, never guessed at.
 */
import type { Sha256Digest } from "../../shared/digest.ts";

export const RECORD_VERSION = 1;

/** What an upload leaves behind so another session can continue it. */
export interface UploadRecord {
  v: typeof RECORD_VERSION;
  /** The fingerprint key (client/fingerprint.ts). */
  key: string;
  name: string;
  size: number;
  type: string;
  lastModified: number;
  /** A handle the browser can re-open after a reload (IndexedDB stores it by structured clone). */
  handle?: FileSystemFileHandle;
  /** Node: the file's path. */
  path?: string;
  /** The tus upload URL (also what tus-js-client's urlStorage hands back). */
  uploadUrl?: string;
  /** The whole file's digest once hashing finished. */
  digest?: Sha256Digest;
  /** Last known offsets, for showing an interrupted row's progress before anything runs. */
  hashedTo?: number;
  uploadedTo?: number;
  /** Paused by the person (a reload keeps it paused-looking: interrupted, reason reload). */
  paused?: boolean;
  createdAt: number;
}

export interface UploadStore {
  get(key: string): Promise<UploadRecord | undefined>;
  put(record: UploadRecord): Promise<void>;
  delete(key: string): Promise<void>;
  list(): Promise<UploadRecord[]>;
}

/** Accepts a stored value only when it is a record of this format version. */
export function checkRecord(value: unknown): UploadRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Partial<UploadRecord>;
  if (r.v !== RECORD_VERSION || typeof r.key !== "string" || typeof r.size !== "number" || typeof r.name !== "string") {
    return undefined;
  }
  return r as UploadRecord;
}

export function createMemoryStore(): UploadStore {
  const records = new Map<string, UploadRecord>();
  return {
    get: async (key) => records.get(key),
    put: async (record) => void records.set(record.key, record),
    delete: async (key) => void records.delete(key),
    list: async () => [...records.values()],
  };
}

/**
 * One upload's record as the upload sees it: the only copy of its digest and upload URL in this
 * session. A patch applies at once in memory and is written behind the earlier ones (tus-js-client's
 * urlStorage, progress and the phase all patch it, and the store must see them in order). Once
 * closed (the upload is done or cancelled and its record deleted), patches stay in memory: the
 * record must not come back.
 */
export interface RecordKeeper {
  readonly current: UploadRecord;
  patch(patch: Partial<UploadRecord>): Promise<void>;
  /** Takes what another session stored (it held the lock meanwhile), keeping what only this one knows. */
  adopt(stored: UploadRecord): void;
  /** Stops writing; resolves once the writes before it are done. */
  close(): Promise<void>;
}

export function keepRecord(store: UploadStore, initial: UploadRecord): RecordKeeper {
  let record = initial;
  let writes = Promise.resolve();
  let closed = false;
  return {
    get current() {
      return record;
    },
    patch(patch) {
      record = { ...record, ...patch };
      if (closed) return writes;
      const snapshot = record;
      writes = writes.then(() => store.put(snapshot)).catch(() => undefined);
      return writes;
    },
    adopt(stored) {
      record = { ...stored, handle: record.handle ?? stored.handle, digest: stored.digest ?? record.digest };
    },
    close() {
      closed = true;
      return writes;
    },
  };
}
