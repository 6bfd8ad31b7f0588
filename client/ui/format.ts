/**
 * The page's words: the test-hook vocabulary, state labels and the message under a row. Pure
 * functions (no DOM) so the page and its tests share them. Sizes, speeds and times come from
 * ../progress.ts and what an error code means from ../errors.ts, as for the CLI.
 */
import { ERROR_MEANINGS } from "../errors.ts";
import type { UploadSnapshot, UploadState } from "../types.ts";

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

/** Whether one click can continue this interrupted row (a kept file handle), or it needs the file again. */
export function canResumeWithoutFile(snapshot: UploadSnapshot): boolean {
  return snapshot.state.kind === "interrupted" && snapshot.state.reason !== "needs-file" && snapshot.hasHandle;
}
