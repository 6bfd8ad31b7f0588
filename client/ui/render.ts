/**
 * UploadSnapshot[] -> DOM. One <li data-testid="upload"> per upload key, updated in place (so a
 * focused button keeps its focus while progress ticks) and carrying the test hooks of
 * docs/page.md. Interrupted uploads from an earlier visit live in their own list, so after a reload
 * the person sees at once what stopped and what each one needs.
 *
 * No uploader in here: the page wires actions to it (see page.ts). That keeps this testable with
 * plain snapshots.
 */
import { digestHex } from "../../shared/digest.ts";
import type { Progress, UploadSnapshot } from "../types.ts";
import { h, setAttr, setHidden, setText } from "./dom.ts";
import { formatBytes, formatEta, formatRate, percent } from "../progress.ts";
import { canResumeWithoutFile, hookReason, hookState, isCancelled, rowMessage, stagedHook, stagedText, stateLabel } from "./format.ts";

export type RowAction = "pause" | "resume" | "cancel" | "choose";

/** The containers the page gives the renderer. */
export interface UploadListElements {
  /** Section holding interrupted uploads (hidden when there are none). */
  interruptedSection: HTMLElement;
  interruptedList: HTMLElement;
  /** Text summary above the interrupted list. */
  interruptedSummary: HTMLElement;
  /** "Resume all" button for interrupted uploads whose file can be re-opened. */
  resumeAll: HTMLButtonElement;
  activeSection: HTMLElement;
  activeList: HTMLElement;
}

interface Meter {
  progress: HTMLProgressElement;
  stats: HTMLElement;
}

interface Row {
  el: HTMLLIElement;
  name: HTMLElement;
  size: HTMLElement;
  state: HTMLElement;
  hash: Meter;
  transfer: Meter;
  message: HTMLElement;
  /** Whether a copy is kept in this browser (stagedText). */
  staged: HTMLElement;
  result: HTMLElement;
  digest: HTMLElement;
  link: HTMLAnchorElement;
  note: HTMLElement;
  buttons: Record<RowAction, HTMLButtonElement>;
}

let nextId = 0;

function meter(label: string, keyId: string): { el: HTMLElement; meter: Meter } {
  const id = `${keyId}-${label.toLowerCase()}`;
  const progress = h("progress", { id, max: "1", value: "0", part: "progress" });
  const stats = h("span", { class: "meter__stats", part: "meter-stats", id: `${id}-stats` });
  // The stats (percent, speed, time left) describe the bar for screen readers.
  progress.setAttribute("aria-describedby", stats.id);
  const el = h("div", { class: "meter", part: "meter" }, h("label", { for: id, class: "meter__label" }, label), progress, stats);
  return { el, meter: { progress, stats } };
}

function button(action: RowAction, text: string): HTMLButtonElement {
  return h("button", { type: "button", class: `btn btn--${action}`, part: `button button-${action}`, "data-action": action }, text);
}

function createRow(key: string): Row {
  const id = `upload-${++nextId}`;
  const name = h("span", { class: "upload__name", part: "row-name", id: `${id}-name` });
  const size = h("span", { class: "upload__size", part: "row-size" });
  const state = h("span", { class: "upload__state", part: "row-state" });
  const hash = meter("Hashing", id);
  const transfer = meter("Uploading", id);
  const message = h("p", { class: "upload__message", part: "row-message" });
  const staged = h("p", { class: "upload__staged" });
  const digest = h("code", { class: "upload__digest", part: "digest" });
  const link = h("a", { class: "upload__link", part: "link" }, "Open the uploaded file");
  const note = h("span", { class: "upload__note" });
  const result = h("p", { class: "upload__result", part: "row-result" }, "SHA-256 verified: ", digest, " ", link, note);
  const buttons = {
    pause: button("pause", "Pause"),
    resume: button("resume", "Resume"),
    choose: button("choose", "Choose the file…"),
    cancel: button("cancel", "Cancel"),
  };
  const actions = h("div", { class: "upload__actions", part: "actions" }, buttons.pause, buttons.resume, buttons.choose, buttons.cancel);
  const el = h(
    "li",
    { class: "upload", part: "row", "data-testid": "upload", "data-key": key, "aria-labelledby": name.id },
    h("div", { class: "upload__head" }, name, size, state),
    hash.el,
    transfer.el,
    message,
    staged,
    result,
    actions,
  );
  return { el, name, size, state, hash: hash.meter, transfer: transfer.meter, message, staged, result, digest, link, note, buttons };
}

function updateMeter(m: Meter, p: Progress, running: boolean): void {
  // <progress> with max 0 is invalid; an empty file is 0 of 1 until it is done.
  const max = Math.max(p.total, 1);
  const value = p.total === 0 ? (p.bytes >= p.total ? 1 : 0) : Math.min(p.bytes, p.total);
  if (m.progress.max !== max) m.progress.max = max;
  if (m.progress.value !== value) m.progress.value = value;
  const pct = percent(p.bytes, p.total);
  setAttr(m.progress, "aria-valuetext", `${pct}%`);
  const parts = [`${pct}%`];
  if (running && pct < 100) {
    const rate = formatRate(p.bytesPerSecond);
    const eta = formatEta(p.etaSeconds);
    if (rate) parts.push(rate);
    if (eta) parts.push(eta);
  }
  setText(m.stats, parts.join(" · "));
}

/** Writes one snapshot into its row: the test hooks first, then what a person sees. */
export function updateRow(row: Row, s: UploadSnapshot): void {
  const state = hookState(s.state);
  const el = row.el;
  setAttr(el, "data-name", s.name);
  setAttr(el, "data-size", String(s.size));
  setAttr(el, "data-state", state);
  setAttr(el, "data-reason", hookReason(s.state));
  setAttr(el, "data-hashed", String(s.hash.bytes));
  setAttr(el, "data-uploaded", String(s.transfer.bytes));
  const digest = s.state.kind === "done" ? s.state.digest : s.digest;
  setAttr(el, "data-digest", digest);
  setAttr(el, "data-resumed-hash-at", s.resumedHashAt === undefined ? undefined : String(s.resumedHashAt));
  setAttr(el, "data-resumed-upload-at", s.resumedUploadAt === undefined ? undefined : String(s.resumedUploadAt));
  setAttr(el, "data-blob", s.state.kind === "done" ? s.state.blobUrl : undefined);
  setAttr(el, "data-upload-url", s.uploadUrl);
  setAttr(el, "data-has-handle", s.hasHandle ? "true" : undefined);
  // What this session actually hashed and sent (the library's counters): what a resume saved.
  setAttr(el, "data-session-hashed", String(s.counters.hashRead));
  setAttr(el, "data-session-sent", String(s.counters.sent));
  setAttr(el, "data-staged", stagedHook(s.staged));
  setAttr(el, "data-source", s.fromCopy ? "copy" : undefined);

  setText(row.name, s.name);
  setAttr(row.name, "title", s.name);
  setText(row.size, formatBytes(s.size));
  setText(row.state, stateLabel(s.state));
  const running = s.state.kind === "hashing" || s.state.kind === "uploading";
  updateMeter(row.hash, s.hash, running);
  updateMeter(row.transfer, s.transfer, running);

  const message = rowMessage(s);
  setText(row.message, message);
  setHidden(row.message, message === "");
  setAttr(row.message, "role", s.state.kind === "failed" ? "alert" : undefined);
  const staged = stagedText(s);
  setText(row.staged, staged);
  setHidden(row.staged, staged === "");

  const done = s.state.kind === "done";
  setHidden(row.result, !done);
  if (s.state.kind === "done") {
    setText(row.digest, s.state.digest);
    setAttr(row.digest, "title", `sha256 ${digestHex(s.state.digest)}`);
    setAttr(row.link, "href", s.state.blobUrl);
    setAttr(row.link, "download", s.name);
    // A file the edge already had (same digest) completes with nothing sent; say so.
    setText(row.note, s.state.bytesSent === 0 && s.size > 0 ? " Nothing had to be sent: the server already had these bytes." : "");
  }

  const b = row.buttons;
  const interrupted = s.state.kind === "interrupted";
  const retryable = s.state.kind === "failed" && s.state.error.retryable;
  setHidden(b.pause, !(running || s.state.kind === "queued"));
  setHidden(b.resume, !(s.state.kind === "paused" || (interrupted && canResumeWithoutFile(s)) || retryable));
  setHidden(b.choose, !(interrupted && !canResumeWithoutFile(s)));
  setHidden(b.cancel, done || s.state.kind === "busy");
  setText(b.resume, retryable ? "Try again" : "Resume");
  // Buttons say which file they act on: "Pause" alone is ambiguous in a list.
  for (const [action, btn] of Object.entries(b)) setAttr(btn, "aria-label", `${btn.textContent ?? action}: ${s.name}`);
}

export interface UploadList {
  /** Renders the snapshots; returns announcements ("name: state") for rows whose state changed. */
  render(snapshots: readonly UploadSnapshot[]): string[];
  /** The key of the row an element (e.g. a clicked button) belongs to. */
  keyOf(target: Element): string | undefined;
}

export function createUploadList(els: UploadListElements): UploadList {
  const rows = new Map<string, Row>();
  const lastState = new Map<string, string>();

  function render(snapshots: readonly UploadSnapshot[]): string[] {
    const announce: string[] = [];
    const seen = new Set<string>();
    const shown = snapshots.filter((s) => !isCancelled(s));
    const interrupted = shown.filter((s) => s.state.kind === "interrupted");
    const active = shown.filter((s) => s.state.kind !== "interrupted");
    for (const [list, group] of [
      [els.interruptedList, interrupted],
      [els.activeList, active],
    ] as const) {
      let prev: Element | null = null;
      for (const s of group) {
        seen.add(s.key);
        let row = rows.get(s.key);
        if (!row) {
          row = createRow(s.key);
          rows.set(s.key, row);
        }
        updateRow(row, s);
        // Keep the snapshot order; move only rows that are out of place (moving loses focus).
        const want: Element | null = prev ? prev.nextElementSibling : list.firstElementChild;
        if (want !== row.el) {
          // Inside a shadow root, document.activeElement is the host: ask the list's own root.
          const focused = (list.getRootNode() as Document | ShadowRoot).activeElement;
          const hadFocus = row.el.contains(focused);
          list.insertBefore(row.el, want);
          if (hadFocus && focused instanceof HTMLElement) focused.focus();
        }
        prev = row.el;
        const label = stateLabel(s.state);
        if (lastState.get(s.key) !== label) {
          lastState.set(s.key, label);
          announce.push(`${s.name}: ${label}`);
        }
      }
    }
    for (const [key, row] of rows) {
      if (!seen.has(key)) {
        const cancelled = snapshots.find((s) => s.key === key && isCancelled(s));
        if (cancelled) announce.push(`${row.el.dataset.name}: ${stateLabel(cancelled.state)}`);
        row.el.remove();
        rows.delete(key);
        lastState.delete(key);
      }
    }
    const oneClick = interrupted.filter(canResumeWithoutFile).length;
    const needFile = interrupted.length - oneClick;
    setHidden(els.interruptedSection, interrupted.length === 0);
    setHidden(els.resumeAll, oneClick === 0);
    setText(els.resumeAll, oneClick === 1 ? "Resume 1 upload" : `Resume ${oneClick} uploads`);
    setText(els.interruptedSummary, summary(interrupted.length, oneClick, needFile));
    setHidden(els.activeSection, active.length === 0);
    return announce;
  }

  function keyOf(target: Element): string | undefined {
    return target.closest<HTMLElement>("[data-testid=upload]")?.dataset.key;
  }

  return { render, keyOf };
}

function summary(total: number, oneClick: number, needFile: number): string {
  if (total === 0) return "";
  const parts = [`${total === 1 ? "1 upload was" : `${total} uploads were`} interrupted when this page last closed.`];
  if (oneClick > 0) parts.push(`${oneClick === 1 ? "1 can" : `${oneClick} can`} continue with one click (the browser may ask to read the file again).`);
  if (needFile > 0) parts.push(`${needFile === 1 ? "1 needs" : `${needFile} need`} the same file dropped or chosen again; it continues where it stopped.`);
  return parts.join(" ");
}
