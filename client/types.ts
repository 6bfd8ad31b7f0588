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
  | { kind: "failed"; error: UploadError }
  | { kind: "cancelled" }; // stopped by the person; the edge's upload and the local record are removed

export type UploadStateKind = UploadState["kind"];

/**
 * Whether a copy of the file is kept in this browser (the origin private file system, OPFS), so
 * that after a crash the upload continues from it without the person finding the file again.
 * The copy is written alongside the hash on machines with cores to spare, right after it on
 * smaller ones (client/staging/copier.ts, "Pace"); only a whole copy is ever used.
 */
export type StagedState =
  | { kind: "off" } // the integrator turned staging off (`staging: false`)
  | { kind: "unavailable" } // no OPFS in this browser (or it refused): after a crash the file may be needed again
  | { kind: "over-limit"; why: "limit" | "quota"; limit: number } // larger than `stageLimit` (limit) or the free storage (quota)
  | { kind: "writing"; bytes: number } // being copied alongside the hashing
  | { kind: "kept" } // the whole file is kept in this browser
  | { kind: "full" } // storage ran full while copying: the copy was dropped, the upload goes on
  | { kind: "slow" } // this browser's storage wrote too slowly to be a disk (a private window's, in memory): not kept
  | { kind: "unusable" } // the kept copy did not match the file's fingerprint: not used, removed
  | { kind: "none" }; // nothing kept (e.g. hashed in an earlier session before the copy existed)

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
    | "SERVER";
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
  /**
   * Something the person should know that did not stop the upload (for example UPLOAD_GONE, or
   * while `retry` is set "The upload server is unavailable (503 ...); retrying in 8 s.").
   */
  notice?: UploadError;
  /** Set while the transfer waits to try a failed request again; the state stays as it was. */
  retry?: RetryState;
  /** Whether a copy is kept in this browser so a crash costs no file search (browsers only; absent in Node). */
  staged?: StagedState;
  /** True when this session reads the bytes from the copy kept in this browser, not from the person's file. */
  fromCopy?: boolean;
}

/** The transfer is waiting to try a failed request again (a fault of the server, its store or the network). */
export interface RetryState {
  /** Failed tries in a row so far (counted from 0 again once the upload makes progress). */
  failures: number;
  /** Tries allowed before the upload fails; Infinity: while the page (or process) runs. */
  maxAttempts: number;
  /** HTTP status of the last failure; 0 = no answer (network). */
  status: number;
  /** The edge's error code when it sent one, e.g. STORAGE_UNAVAILABLE. */
  code?: string;
  /** When the next try starts (ms since the epoch). */
  at: number;
}

/**
 * How the transfer retries faults of the server, its store and the network (none, 5xx, 409,
 * 423, 429, 460; never another 4xx): exponential backoff with full jitter, and at least the
 * server's Retry-After on a 429 or 503.
 */
export interface RetryOptions {
  /**
   * Tries of one failing request before the upload fails, counting the first. The count starts
   * again once the upload makes progress, so errors spread over a long upload do not add up.
   * Default Infinity in browsers (retry while the page is open), 10 in Node and the CLI.
   */
  maxAttempts?: number;
  /** Backoff base: retry n waits a random time in [0, min(maxDelayMs, baseDelayMs * 2^n)]. Default 1000. */
  baseDelayMs?: number;
  /** Cap of the backoff; a server's Retry-After may ask for longer (up to 10 minutes). Default 60 000. */
  maxDelayMs?: number;
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
  /** How failed requests are retried (see RetryOptions). */
  retry?: RetryOptions;
  /**
   * @deprecated Use `retry`. Fixed waits (ms), one retry per entry, then the upload fails; the
   * server's Retry-After still counts. Ignored when `retry` is given.
   */
  retryDelays?: number[];
  /**
   * Create the upload only once the file is hashed, so the digest is declared at creation and
   * the edge can complete an already stored blob with no bytes sent. `true` always, `false`
   * never (hash and send alongside; the digest goes on every PATCH once known, and always on the
   * final one), a number: for files up to that many bytes. Default 1 GiB: hashing (~270 MB/s in
   * Chromium, a few seconds per GiB) is rarely what a person waits for.
   */
  hashFirst?: boolean | number;
  /** Upper bounds in bytes per second, e.g. to keep a laptop cool or leave bandwidth to others. */
  limitRate?: { hash?: number; transfer?: number };
  /**
   * Browsers: keep a copy of each file in the origin private file system while it is hashed, so
   * after a crash the upload continues without the file (no search, no permission prompt).
   * Default true; `false` keeps nothing in the browser beyond the small records.
   */
  staging?: boolean;
  /** Files larger than this many bytes are not copied (nor when the browser's free quota is smaller). Default 4 GiB. */
  stageLimit?: number;
}
