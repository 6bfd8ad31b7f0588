/**
 * Every UploadError the library reports is built here: one table of what each code means for a
 * person (the page's fallback when a message is empty) and one constructor per cause, each with
 * the detailed message the library knows at that point. Callers never write error literals, so
 * a code's wording and its `retryable` flag are decided in one place.
 */
import { formatDuration } from "./progress.ts";
import type { RetryState, UploadError } from "./types.ts";

export type UploadErrorCode = UploadError["code"];

/** What a code means and what the person can do about it, when no more specific message is known. */
export const ERROR_MEANINGS: Readonly<Record<UploadErrorCode, { why: string; todo: string }>> = {
  NETWORK: { why: "The connection to the server was lost.", todo: "Check your connection, then press Resume." },
  AUTH: {
    why: "The server did not accept this page's upload permission (the token is missing, wrong or expired).",
    todo: "Open the page again from the link you were given, or ask for a new one.",
  },
  DIGEST_MISMATCH: {
    why: "The file that arrived is not the file that was read here, so it was thrown away.",
    todo: "Make sure the file is not being changed, then add it again.",
  },
  FILE_CHANGED: {
    why: "This is a different file (or it changed) from the one this upload started with.",
    todo: "Drop the original file, or cancel this upload and start a new one.",
  },
  FILE_UNREADABLE: { why: "The browser could not read the file any more.", todo: "Drop the same file again." },
  PERMISSION_DENIED: {
    why: "The browser was not allowed to open the file again.",
    todo: "Press Resume and allow access, or drop the same file again.",
  },
  UPLOAD_GONE: {
    why: "The server no longer had the unfinished upload (it expired), so it started again from the beginning.",
    todo: "Nothing to do; if it stops, press Resume.",
  },
  SERVER: { why: "The server had a problem storing the file.", todo: "Press Resume to try again in a moment." },
};

const error = (code: UploadErrorCode, message: string, retryable: boolean): UploadError => ({ code, message, retryable });

/** "503 STORAGE_UNAVAILABLE": the status and, when the edge sent one, its error code. */
const answer = (status: number, code?: string) => `${status}${code ? ` ${code}` : ""}`;

// The file

/** The file cannot be read any more: moved, deleted, or changed on disk since it was opened. */
export const fileUnreadable = () =>
  error("FILE_UNREADABLE", "The file can no longer be read (moved, deleted or changed on disk). Add it again to continue.", false);

/** A row from an earlier session has no file in this one: the person must give it again. */
export const fileNeeded = (name: string) => error("FILE_UNREADABLE", `Drop or pick ${name} again to continue where it stopped.`, true);

/** The kept handle opens a file with another fingerprint than the one this upload started with. */
export const fileChangedSinceStart = (name: string) =>
  error("FILE_CHANGED", `${name} changed since the upload started. Add it again to upload the new version.`, false);

/** A file was given with an interrupted row's name but is not that row's file. */
export const notTheInterruptedFile = (name: string) =>
  error(
    "FILE_CHANGED",
    `This is not the same ${name} as the interrupted upload (size, date or content differ). Drop the original file to resume, or cancel the interrupted upload to upload this one.`,
    true,
  );

export const permissionDenied = () => error("PERMISSION_DENIED", "Reading the file was not allowed. Allow it, or drop the same file again.", true);

// The edge's answers

export const connectionFailed = () =>
  error("NETWORK", "The connection to the upload server failed. Check the network and resume; the upload continues where it stopped.", true);

export const authRefused = () =>
  error("AUTH", "The upload server refused the credentials (missing, expired or invalid token). Sign in again, then resume.", true);

/** The edge refused the whole file's bytes: they do not hash to the declared digest. */
export const digestRefused = () =>
  error(
    "DIGEST_MISMATCH",
    "The bytes the server received do not match the file's SHA-256: the file probably changed while it was uploading. Add it again to upload it from the start.",
    false,
  );

/** The edge finished the upload with another digest than this side computed. */
export const digestMismatch = (stored: string, ours: string) =>
  error("DIGEST_MISMATCH", `The server stored ${stored} but the file hashes to ${ours}. Add the file again.`, false);

export const tooLarge = (detail: string) => error("SERVER", `The file is larger than this server accepts. ${detail}`.trim(), false);

/** A 5xx that is not retried (the policy has no say over it, or it was not a retryable status). */
export const serverProblem = (status: number, code?: string) =>
  error("SERVER", `The upload server had a problem (${answer(status, code)}). Resume later; nothing is lost.`, true);

/** Any other 4xx: an answer, not a fault. */
export const serverRefused = (status: number, code?: string, detail?: string) =>
  error("SERVER", `The upload server refused the upload (${answer(status, code)}${detail ? `: ${detail}` : ""}).`, false);

/** The retry policy gave up after `failures` failed tries in a row over `elapsedMs`. */
export function retriesExhausted(status: number, code: string | undefined, failures: number, elapsedMs: number): UploadError {
  const what = status === 0 ? "The connection to the upload server kept failing" : `The upload server kept failing (${answer(status, code)})`;
  return error(status === 0 ? "NETWORK" : "SERVER", `${what} after ${failures} attempts over ${formatDuration(elapsedMs)}; nothing is lost.`, true);
}

/** What a row says while it waits for a retry, e.g. "The upload server is unavailable (503 STORAGE_UNAVAILABLE); retrying in 8 s." */
export function retryNotice(state: RetryState, now = Date.now()): UploadError {
  const said = answer(state.status, state.code);
  const what =
    state.status === 0
      ? "The connection to the upload server failed"
      : state.status === 503
        ? `The upload server is unavailable (${said})`
        : state.status === 429
          ? `The upload server is busy (${said})`
          : state.status >= 500
            ? `The upload server had a problem (${said})`
            : `The upload server asked to try again (${said})`;
  const wait = state.at - now;
  const when = wait >= 500 ? `retrying in ${formatDuration(wait)}` : "retrying now";
  const of = Number.isFinite(state.maxAttempts) ? ` (attempt ${state.failures + 1} of ${state.maxAttempts})` : "";
  return error(state.status === 0 ? "NETWORK" : "SERVER", `${what}; ${when}${of}.`, true);
}

/** The edge lost or expired the upload mid-way; the transfer started a new one from 0. */
export const uploadGone = (status: number) =>
  error("UPLOAD_GONE", `The server no longer had this upload (${status === 410 ? "expired" : "not found"}); it started again from the beginning.`, true);

/** The edge lost the upload again and again: the transfer stops restarting it. */
export const uploadKeptGone = () => error("UPLOAD_GONE", "The upload server keeps losing this upload. Try again later.", true);

/** Anything else: a bug or an environment the library does not know. */
export const unexpected = (message: string) => error("SERVER", `Unexpected failure: ${message}`, true);

// Carrying and classifying

/** A failure with what a person should read, thrown through the hash and transfer runs to the upload. */
// No parameter properties here: the CLI runs this file through Node's type stripping.
export class UploadFailure extends Error {
  readonly error: UploadError;
  /** The HTTP status that caused it, when one did. */
  readonly status: number | undefined;
  constructor(error: UploadError, status?: number) {
    super(error.message);
    this.name = "UploadFailure";
    this.error = error;
    this.status = status;
  }
}

/**
 * Errors that mean the file itself is gone, unreadable or changed, by their type: the DOM's
 * NotReadableError and NotFoundError (a Blob whose file changed or disappeared, also when the
 * hasher worker passes them on by name), disk-file.ts's FileChangedError, and Node's ENOENT.
 */
const FILE_ERROR_NAMES = new Set(["NotReadableError", "NotFoundError", "FileChangedError"]);

export function isFileReadError(cause: unknown): boolean {
  if (!(cause instanceof Error)) return false;
  return FILE_ERROR_NAMES.has(cause.name) || (cause as { code?: unknown }).code === "ENOENT";
}

/** Whatever stopped an upload, as an UploadError: carried, a file that cannot be read, or unexpected. */
export function toUploadError(cause: unknown): UploadError {
  if (cause instanceof UploadFailure) return cause.error;
  if (isFileReadError(cause)) return fileUnreadable();
  return unexpected(cause instanceof Error ? cause.message : String(cause));
}
