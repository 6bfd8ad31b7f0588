/**
 * The page's words: the test-hook vocabulary, state labels and the message under a row. Pure
 * functions (no DOM) so the page and its tests share them. Sizes, speeds and times come from
 * ../progress.ts and what an error code means from ../errors.ts, as for the CLI.
 */
import { ERROR_MEANINGS } from "../errors.ts";
import { formatBytes } from "../progress.ts";
import type { StagedState, UploadSnapshot, UploadState } from "../types.ts";

/** The test-hook state vocabulary (docs/page.md "Test hooks", a contract). */
export type HookState = "hashing" | "uploading" | "paused" | "interrupted" | "done" | "failed";

/**
 * The library has three states the hook vocabulary lacks:
 * - `busy` (another tab holds this upload's Web Lock) is `paused`: nothing runs in this tab and
 *   nothing is asked of the person; it continues here if the other tab closes;
 * - `queued` (waiting for a free slot) is `hashing`, the step it starts with.
 * - `cancelled` has no row at all (isCancelled: the page removes it); were one drawn, it would
 *   say `failed`, the only hook state that ends an upload without a blob.
 * `data-reason` ("other-tab", "queued") tells them apart from the real thing.
 */
export function hookState(state: UploadState): HookState {
  if (state.kind === "busy") return "paused";
  if (state.kind === "queued") return "hashing";
  if (state.kind === "cancelled") return "failed";
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
    case "cancelled":
      return "Cancelled";
  }
}

/** The one-line message under a row: why it stopped and what to do, or nothing. */
export function rowMessage(snapshot: UploadSnapshot): string {
  const { state } = snapshot;
  switch (state.kind) {
    case "failed": {
      // The library's messages are written for people and know the details; ours are the fallback.
      if (state.error.message.trim() !== "") return state.error.message;
      const { why, todo } = ERROR_MEANINGS[state.error.code];
      return `${why} ${todo}`;
    }
    case "interrupted":
      if (state.reason === "needs-file") return "Drop or choose the same file again to continue where it stopped.";
      if (state.reason === "needs-permission") return "Press Resume and allow the browser to read the file again.";
      if (hasCopy(snapshot) && !snapshot.hasHandle) return "Press Resume to continue from the copy kept in this browser; no need to find the file.";
      return snapshot.hasHandle ? "Press Resume to continue." : "Drop or choose the same file again to continue where it stopped.";
    case "busy":
      return "Another tab of this page is uploading this file; it continues here if that tab closes.";
    case "queued":
      return "Waiting for the uploads before it to finish.";
    default:
      // A notice did not stop the upload but is worth knowing (e.g. it had to start over).
      return snapshot.notice ? snapshot.notice.message || ERROR_MEANINGS[snapshot.notice.code].why : "";
  }
}

/** A cancelled upload is gone for the person: its row goes away (the edge removed it too). */
export function isCancelled(snapshot: UploadSnapshot): boolean {
  return snapshot.state.kind === "cancelled";
}

/** Whether one click can continue this interrupted row (a kept file handle or copy), or it needs the file again. */
export function canResumeWithoutFile(snapshot: UploadSnapshot): boolean {
  return snapshot.state.kind === "interrupted" && snapshot.state.reason !== "needs-file" && (snapshot.hasHandle || hasCopy(snapshot));
}

function hasCopy(snapshot: UploadSnapshot): boolean {
  return snapshot.staged?.kind === "kept";
}

/**
 * `data-staged` (docs/page.md): `true` the whole file is kept in this browser, `writing` the copy
 * is being written, `full` storage ran full and the copy was dropped, `off` turned off by the
 * integrator, `false` nothing kept (no OPFS, over the limit or the quota, storage in memory as in
 * a private window, a copy that failed its check). Absent when the library says nothing (Node, or a finished or cancelled upload).
 */
export function stagedHook(staged: StagedState | undefined): string | undefined {
  switch (staged?.kind) {
    case undefined:
      return undefined;
    case "kept":
      return "true";
    case "writing":
      return "writing";
    case "full":
      return "full";
    case "off":
      return "off";
    default:
      return "false";
  }
}

/**
 * The row's line about the copy kept in this browser, in plain words: people should know that a
 * crash costs them nothing (or that it would cost them the file search, and why).
 */
export function stagedText(snapshot: UploadSnapshot): string {
  const { staged, state } = snapshot;
  if (state.kind === "done" || state.kind === "cancelled" || !staged) return "";
  if (snapshot.fromCopy) return "Continuing from the copy kept in this browser.";
  switch (staged.kind) {
    case "kept":
      return "Kept in this browser so it can continue after a crash.";
    case "writing":
      return "Being kept in this browser so it can continue after a crash.";
    case "over-limit":
      return staged.why === "limit"
        ? `Not kept in this browser (larger than ${formatBytes(staged.limit)}): after a crash the file may have to be given again.`
        : "Not kept in this browser (not enough browser storage free): after a crash the file may have to be given again.";
    case "unavailable":
      return "Not kept in this browser (it cannot store a copy): after a crash the file may have to be given again.";
    case "full":
      return "Browser storage ran full, so no copy is kept; the upload goes on.";
    case "slow":
      return "Not kept in this browser (its storage is in memory here, as in a private window, and would not outlive a crash): after a crash the file may have to be given again.";
    case "unusable":
      return "The copy kept in this browser did not match the file, so it was not used.";
    case "off":
    case "none":
      return "";
  }
}
