/**
 * Numbers and words for people: sizes, speeds, times left, and what a failure means and what to
 * do about it. Pure functions (no DOM) so the page and its tests share them.
 */
import type { UploadError, UploadSnapshot, UploadState } from "../types.ts";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** `1536` -> `1.5 KiB`. Binary units, because file sizes and the edge's part size are binary. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : "";
}

/** `75` -> `1 min 15 s left`; empty when unknown. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s left`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s left`;
  return `${Math.floor(m / 60)} h ${m % 60} min left`;
}

export function percent(bytes: number, total: number): number {
  if (total <= 0) return bytes >= total ? 100 : 0;
  return Math.min(100, Math.floor((bytes / total) * 100));
}

/** The test-hook state vocabulary (DESIGN.md "Test hooks", a contract). */
export type HookState = "hashing" | "uploading" | "paused" | "interrupted" | "done" | "failed";

/**
 * The library has two states the hook vocabulary lacks:
 * - `busy` (another tab holds this upload's Web Lock) is `paused`: nothing runs in this tab and
 *   nothing is asked of the person; it continues here if the other tab closes;
 * - `queued` (waiting for a free slot) is `hashing`, the step it starts with.
 * `data-reason` ("other-tab", "queued") tells them apart from the real thing.
 */
export function hookState(state: UploadState): HookState {
  if (state.kind === "busy") return "paused";
  if (state.kind === "queued") return "hashing";
  return state.kind;
}

/** Extra detail for data-reason: why a row is interrupted, busy or queued. */
export function hookReason(state: UploadState): string | undefined {
  if (state.kind === "interrupted") return state.reason;
  if (state.kind === "busy") return "other-tab";
  if (state.kind === "queued") return "queued";
  return undefined;
}

/** Short label of a state, as shown in the row and announced to screen readers. */
export function stateLabel(state: UploadState): string {
  switch (state.kind) {
    case "queued":
      return "Waiting";
    case "hashing":
      return "Hashing";
    case "uploading":
      return "Uploading";
    case "paused":
      return "Paused";
    case "busy":
      return "Uploading in another tab";
    case "interrupted":
      return "Interrupted";
    case "done":
      return "Done, verified";
    case "failed":
      return "Failed";
  }
}

/** What went wrong, in words, and what the person can do about it. */
export function describeError(error: UploadError): { why: string; todo: string } {
  switch (error.code) {
    case "NETWORK":
      return { why: "The connection to the server was lost.", todo: "Check your connection, then press Resume." };
    case "AUTH":
      return {
        why: "The server did not accept this page's upload permission (the token is missing, wrong or expired).",
        todo: "Open the page again from the link you were given, or ask for a new one.",
      };
    case "DIGEST_MISMATCH":
      return {
        why: "The file that arrived is not the file that was read here, so it was thrown away.",
        todo: "Make sure the file is not being changed, then add it again.",
      };
    case "FILE_CHANGED":
      return {
        why: "This is a different file (or it changed) from the one this upload started with.",
        todo: "Drop the original file, or cancel this upload and start a new one.",
      };
    case "FILE_UNREADABLE":
      return { why: "The browser could not read the file any more.", todo: "Drop the same file again." };
    case "PERMISSION_DENIED":
      return {
        why: "The browser was not allowed to open the file again.",
        todo: "Press Resume and allow access, or drop the same file again.",
      };
    case "UPLOAD_GONE":
      return {
        why: "The server no longer had the unfinished upload (it expired), so it started again from the beginning.",
        todo: "Nothing to do; if it stops, press Resume.",
      };
    case "SERVER":
      return { why: "The server had a problem storing the file.", todo: "Press Resume to try again in a moment." };
    case "CANCELLED":
      return { why: "The upload was cancelled.", todo: "Add the file again to start over." };
  }
}

/** The one-line message under a row: why it stopped and what to do, or nothing. */
export function rowMessage(snapshot: UploadSnapshot): string {
  const { state } = snapshot;
  switch (state.kind) {
    case "failed": {
      // The library's messages are written for people and know the details; ours are the fallback.
      if (state.error.message.trim() !== "") return state.error.message;
      const { why, todo } = describeError(state.error);
      return `${why} ${todo}`;
    }
    case "interrupted":
      if (state.reason === "needs-file") return "Drop or choose the same file again to continue where it stopped.";
      if (state.reason === "needs-permission") return "Press Resume and allow the browser to read the file again.";
      return snapshot.hasHandle ? "Press Resume to continue." : "Drop or choose the same file again to continue where it stopped.";
    case "busy":
      return "Another tab of this page is uploading this file; it continues here if that tab closes.";
    case "queued":
      return "Waiting for the uploads before it to finish.";
    default:
      // A notice did not stop the upload but is worth knowing (e.g. it had to start over).
      return snapshot.notice ? snapshot.notice.message || describeError(snapshot.notice).why : "";
  }
}

/** A cancelled upload is gone for the person: its row goes away (the edge removed it too). */
export function isCancelled(snapshot: UploadSnapshot): boolean {
  return snapshot.state.kind === "failed" && snapshot.state.error.code === "CANCELLED";
}

/** Whether one click can continue this interrupted row (a kept file handle), or it needs the file again. */
export function canResumeWithoutFile(snapshot: UploadSnapshot): boolean {
  return snapshot.state.kind === "interrupted" && snapshot.state.reason !== "needs-file" && snapshot.hasHandle;
}
