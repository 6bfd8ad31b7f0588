/**
 * Exposes `<edge-upload>` to the browser tests as `window.elementHarness`: the element mounted
 * with a stand-in uploader (records calls, serves snapshots the test sets, and can hold restore()
 * back) or with the real library and its attributes. Events the element dispatches are recorded
 * from the document, so the test sees that they bubble out of the shadow root (composed).
 */
import "../../client/element/index.ts";
import type { UploadEventDetail } from "../../client/element/index.ts";
import type { UploaderEvent, UploadSnapshot } from "../../client/types.ts";
import { seededBytes } from "../support/seeded.ts";

export interface AddedFile {
  name: string;
  size: number;
  kind: "File" | "handle";
}

export interface RecordedEvent {
  type: string;
  detail: UploadEventDetail;
  bubbles: boolean;
  composed: boolean;
}

const calls: string[] = [];
const added: AddedFile[] = [];
const events: RecordedEvent[] = [];
let snapshots: UploadSnapshot[] = [];
let releaseRestore: (() => void) | undefined;
const listeners = new Set<(e: UploaderEvent) => void>();

for (const type of ["upload-progress", "upload-done", "upload-error"]) {
  document.addEventListener(type, (event) => {
    const { detail, bubbles, composed } = event as CustomEvent<UploadEventDetail>;
    // The snapshot is dropped: it is not needed by the tests and would bloat every poll.
    events.push({ type, detail: { ...detail, snapshot: undefined as never }, bubbles, composed });
  });
}

function mount(configure: (el: HTMLElementTagNameMap["edge-upload"]) => void): void {
  document.querySelector("edge-upload")?.remove();
  const el = document.createElement("edge-upload");
  el.id = "uploader";
  configure(el);
  document.querySelector("main")?.append(el);
}

const elementHarness = {
  calls,
  added,
  events,
  /**
   * The element with a stand-in uploader. `holdRestore`: restore() resolves only once
   * `finishRestore()` is called (a slow IndexedDB), to give files while it is pending.
   */
  mountStandIn(opts: { holdRestore?: boolean } = {}): boolean {
    mount((el) => {
      el.uploader = {
        async add(files) {
          for (const f of files) added.push(f instanceof File ? { name: f.name, size: f.size, kind: "File" } : { name: f.name, size: -1, kind: "handle" });
          return [];
        },
        restore: () =>
          opts.holdRestore ? new Promise<UploadSnapshot[]>((resolve) => (releaseRestore = () => resolve(snapshots))) : Promise.resolve(snapshots),
        list: () => snapshots,
        pause: async (key) => void calls.push(`pause:${key}`),
        resume: async (key) => void calls.push(`resume:${key}`),
        cancel: async (key) => void calls.push(`cancel:${key}`),
        on(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      };
    });
    return true;
  },
  finishRestore(): boolean {
    releaseRestore?.();
    return releaseRestore !== undefined;
  },
  /** Sets the stand-in's snapshots and tells the element, as the library's change events would. */
  setSnapshots(next: UploadSnapshot[]): void {
    snapshots = next;
    for (const s of next) for (const l of listeners) l({ type: "change", upload: s });
    document.querySelector("edge-upload")?.refresh();
  },
  /** The element with the real library, configured by attributes (name -> value). */
  mountReal(attributes: Record<string, string>): boolean {
    mount((el) => {
      for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
    });
    return true;
  },
  /**
   * Connects the real element and, in the same task, gives its file input a seeded file
   * (test/support/seeded.ts) with a change event: the earliest moment a file can arrive.
   */
  mountRealWithFile(attributes: Record<string, string>, file: { name: string; size: number; seed: number }): boolean {
    elementHarness.mountReal(attributes);
    const input = document.querySelector("edge-upload")?.shadowRoot?.querySelector<HTMLInputElement>("[data-testid=file-input]");
    if (!input) throw new Error("no file input in the element");
    const dt = new DataTransfer();
    dt.items.add(new File([seededBytes(file.size, file.seed)], file.name, { type: "application/octet-stream", lastModified: 1_700_000_000_000 }));
    input.files = dt.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  },
  /**
   * Drops a seeded file (test/support/seeded.ts) on the element's drop zone: dragenter, dragover
   * and drop carrying a script-built DataTransfer, dispatched in the page, so every engine's
   * driver can do it (only Playwright can hand a DataTransfer to its own dispatchEvent).
   */
  dropSeededFile(file: { name: string; size: number; seed: number }): boolean {
    const zone = document.querySelector("edge-upload")?.shadowRoot?.querySelector("[data-testid=drop-zone]");
    if (!zone) throw new Error("no drop zone in the element");
    const dt = new DataTransfer();
    dt.items.add(new File([seededBytes(file.size, file.seed)], file.name, { type: "application/octet-stream", lastModified: 1_700_000_000_000 }));
    for (const type of ["dragenter", "dragover", "drop"]) {
      const event = new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true, composed: true });
      // An engine whose DragEvent constructor drops the init's dataTransfer: give it by hand.
      if (event.dataTransfer !== dt) Object.defineProperty(event, "dataTransfer", { value: dt });
      zone.dispatchEvent(event);
    }
    return true;
  },
};

export type ElementHarness = typeof elementHarness;
(globalThis as unknown as { elementHarness: ElementHarness }).elementHarness = elementHarness;
