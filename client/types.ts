/**
 * The public types of the client library (browser and Node). One upload is two resumable
 * processes, hashing and transfer; its state is an explicit union so a UI can switch on it.
 */
import type { Sha256Digest } from "../shared/digest.ts";

/** Where the page's `data-state` comes from (see the test hooks in the README). */
export type UploadState =
  | { kind: "queued" } // waiting for a free slot (`concurrency`); nothing read yet in this session
  | { kind: "hashing" } // hashing (transfer may run alongside)
  | { kind: "uploading" } // hash done or running, bytes going out
  | { kind: "paused" } // paused by the person
  | { kind: "interrupted"; reason: "reload" | "needs-file" | "needs-permission" } // known from a previous session, not running
  | { kind: "busy"; reason: "other-tab" } // another tab holds this upload's Web Lock
  | { kind: "done"; digest: Sha256Digest; blobUrl: string; bytesSent: number }
  | { kind: "failed"; error: UploadError };

export type UploadStateKind = UploadState["kind"];

/** An error a person can read, with a machine code. `retryable` says whether resume may help. */
export interface UploadError {
  code:
    | "NETWORK"
    | "AUTH"
    | "DIGEST_MISMATCH"
    | "FILE_CHANGED" // a different file than the one this upload was started with
    | "FILE_UNREADABLE"
    | "PERMISSION_DENIED"
    | "UPLOAD_GONE" // the edge expired or lost the upload; restarted from 0
    | "SERVER"
    | "CANCELLED";
  message: string;
  retryable: boolean;
}

/** Progress of one process. `bytesPerSecond` and `etaSeconds` are smoothed. */
export interface Progress {
  bytes: number;
  total: number;
  bytesPerSecond: number;
  etaSeconds: number | undefined;
}

/**
 * What this session actually did, for people who want to see what a resume saved (and for
 * tests that measure it): bytes the hasher read and bytes put into PATCH bodies since the page
 * (or process) started. After a resume, `hashRead` = size - resumedHashAt and `sent` =
 * size - resumedUploadAt when nothing had to be repeated.
 */
export interface SessionCounters {
  /** Bytes read and hashed by the hasher in this session. */
  hashRead: number;
  /** Bytes handed to PATCH requests in this session (counted when each request starts). */
  sent: number;
}

/** A snapshot of one upload, as the UI renders it. */
export interface UploadSnapshot {
  /** Stable across reloads: derived from the file's fingerprint. */
  key: string;
  name: string;
  size: number;
  type: string;
  lastModified: number;
  state: UploadState;
  hash: Progress;
  transfer: Progress;
  digest?: Sha256Digest;
  /** Byte offsets where hashing and uploading resumed in this session (absent when fresh). */
  resumedHashAt?: number;
  resumedUploadAt?: number;
  /** Whether a kept file handle can be re-opened (may need a permission prompt on click). */
  hasHandle: boolean;
  /** tus upload URL once created. */
  uploadUrl?: string;
  counters: SessionCounters;
  /** Something the person should know that did not stop the upload (for example UPLOAD_GONE). */
  notice?: UploadError;
}

export type UploaderEvent =
  | { type: "change"; upload: UploadSnapshot } // any state or progress change (throttled to <= 4/s per upload)
  | { type: "error"; upload: UploadSnapshot; error: UploadError };

export interface UploaderOptions {
  /** tus endpoint, e.g. "https://edge.example/files" or "/files". */
  endpoint: string;
  /** Bearer token, or a function that returns one (called before each request). */
  token?: string | (() => string | Promise<string>);
  /** Transfer chunk size; rounded down to a multiple of the edge's part size. Default 32 MiB. */
  chunkSize?: number;
  /** How many files hash and upload at once. Default 2. */
  concurrency?: number;
  /** Hasher checkpoint interval in bytes. Default 16 MiB. */
  checkpointInterval?: number;
  /** Retry delays for the transfer (ms). Default [0, 1000, 3000, 5000, 10000, 20000]. */
  retryDelays?: number[];
  /**
   * Create the upload only once the file is hashed, so the digest is declared at creation and
   * the edge can complete an already stored blob with no bytes sent. `true` always, `false`
   * never (hash and send alongside; the digest goes on the final PATCH), a number: for files
   * up to that many bytes. Default 64 MiB: hashing (~270 MB/s) is rarely what a person waits for.
   */
  hashFirst?: boolean | number;
  /** Upper bounds in bytes per second, e.g. to keep a laptop cool or leave bandwidth to others. */
  limitRate?: { hash?: number; transfer?: number };
}
