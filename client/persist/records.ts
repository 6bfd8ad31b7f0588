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
