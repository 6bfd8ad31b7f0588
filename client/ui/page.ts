/**
 * Wires the page: drop zone, pickers, the upload list and the uploader. Everything the person
 * does goes to the uploader; everything shown comes back from its snapshots (render.ts).
 */
import type { UploadSnapshot } from "../types.ts";
import { type FileSource, filesFromDrop, hasDirectoryPicker, hasFilePicker, pickDirectory, pickFiles } from "./file-sources.ts";
import { canResumeWithoutFile } from "./format.ts";
import { createUploadList, type RowAction, type UploadList, type UploadListElements } from "./render.ts";
import type { PageUploader } from "./uploader-port.ts";

/** Test hooks and layout elements the UI needs (the <edge-upload> element's shadow root holds them). */
export interface PageElements extends UploadListElements {
  dropZone: HTMLElement;
  fileInput: HTMLInputElement;
  folderInput: HTMLInputElement;
  folderButton: HTMLButtonElement;
  status: HTMLElement;
  announcer: HTMLElement;
}

export function findPageElements(root: ParentNode = document): PageElements {
  const get = <T extends HTMLElement>(selector: string): T => {
    const el = root.querySelector<T>(selector);
    if (!el) throw new Error(`the upload UI is missing ${selector}`);
    return el;
  };
  return {
    dropZone: get("[data-testid=drop-zone]"),
    fileInput: get("[data-testid=file-input]"),
    folderInput: get("#folder-input"),
    folderButton: get("#folder-button"),
    status: get("#status"),
    announcer: get("#announcer"),
    interruptedSection: get("#interrupted"),
    interruptedList: get("#interrupted-list"),
    interruptedSummary: get("#interrupted-summary"),
    resumeAll: get("#resume-all"),
    activeSection: get("#uploads"),
    activeList: get("#upload-list"),
  };
}

/** How often the list is refreshed from uploader.list() while work runs (the hooks' 250 ms promise). */
const REFRESH_MS = 200;

/** A started UI: `refresh` renders now; `stop` removes its window listeners, timer and uploader listener. */
export interface StartedPage {
  refresh(): void;
  /** Writes a line to the status line (what went wrong, for people). */
  say(text: string): void;
  stop(): void;
}

export function startPage(els: PageElements, uploader: PageUploader): StartedPage {
  const list = createUploadList(els);
  const cleanups: (() => void)[] = [];
  const say = (text: string) => {
    els.status.textContent = text;
  };
  const { render, schedule } = createRenderer(els, uploader, list, say, cleanups);

  async function add(files: FileSource[]): Promise<void> {
    if (files.length === 0) return;
    try {
      await uploader.add(files);
      say("");
    } catch (error) {
      say(`Could not add ${files.length === 1 ? "the file" : "the files"}: ${errorText(error)}`);
    }
    schedule();
  }
  // The pickers: File System Access where it exists (its handles let a reload resume without
  // picking again), the <input type=file> test hooks elsewhere.
  const openPicker = () => openWithFallback(hasFilePicker, pickFiles, els.fileInput, add);
  const openFolderPicker = () => openWithFallback(hasDirectoryPicker, pickDirectory, els.folderInput, add);

  wireDropZone(els.dropZone, openPicker, add, cleanups);
  for (const input of [els.fileInput, els.folderInput]) {
    input.addEventListener("change", () => {
      const files = Array.from(input.files ?? []);
      input.value = ""; // choosing the same file again must fire change again
      void add(files);
    });
  }
  els.folderButton.addEventListener("click", () => void openFolderPicker());
  wireRowActions(els, list, uploader, openPicker, say, schedule);

  return {
    refresh: render,
    say,
    stop() {
      for (const cleanup of cleanups.splice(0)) cleanup();
    },
  };
}

/** Renders the list from uploader.list(): once per frame on events, and on a timer while work runs. */
function createRenderer(
  els: PageElements,
  uploader: PageUploader,
  list: UploadList,
  say: (text: string) => void,
  cleanups: (() => void)[],
): { render(): void; schedule(): void } {
  let scheduled = false;
  function render(): void {
    scheduled = false;
    const announcements = list.render(uploader.list());
    // One polite announcement per batch: state changes, never progress ticks.
    if (announcements.length > 0) els.announcer.textContent = announcements.join(". ");
  }
  // Many change events per frame collapse into one render.
  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(render);
  }
  const off = uploader.on((event) => {
    // Errors that do not end a row (a different file dropped for an interrupted one, a denied
    // permission, a file that could not be read at all) are said once, in the status line.
    if (event.type === "error") say(`${event.upload.name}: ${event.error.message}`);
    schedule();
  });
  cleanups.push(() => void off());
  // Events are throttled by the library and rAF pauses in hidden tabs: a timer keeps the hooks fresh.
  const timer = setInterval(() => {
    if (uploader.list().some(isRunning)) render();
  }, REFRESH_MS);
  cleanups.push(() => clearInterval(timer));
  return { render, schedule };
}

async function openWithFallback(
  has: () => boolean,
  pick: () => Promise<FileSource[]>,
  input: HTMLInputElement,
  add: (files: FileSource[]) => Promise<void>,
): Promise<void> {
  if (!has()) {
    input.click();
    return;
  }
  try {
    await add(await pick());
  } catch {
    input.click(); // the picker refused (e.g. a sandboxed frame): fall back
  }
}

/** Click or Enter/Space opens the picker; dropped files are added; a drop beside the zone is refused. */
function wireDropZone(zone: HTMLElement, openPicker: () => Promise<void>, add: (files: FileSource[]) => Promise<void>, cleanups: (() => void)[]): void {
  zone.addEventListener("click", (event) => {
    // The zone holds the visible "choose" label for the input; let that click through as is.
    if ((event.target as Element).closest("label, input, button")) return;
    void openPicker();
  });
  zone.addEventListener("keydown", (event) => {
    if (event.target !== zone) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault(); // Space would scroll the page
      void openPicker();
    }
  });
  // Drag feedback: a counter, because dragenter/dragleave fire for every child element.
  let depth = 0;
  zone.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth++;
    zone.classList.add("is-dragover");
  });
  zone.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("is-dragover");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("is-dragover");
    if (event.dataTransfer) void filesFromDrop(event.dataTransfer).then(add);
  });
  // A file dropped next to the zone must not navigate away from the page (and lose the list).
  // composedPath: from the window, a target inside a shadow root is seen as its host.
  for (const type of ["dragover", "drop"] as const) {
    const guard = (event: DragEvent) => {
      if (!event.composedPath().includes(zone)) event.preventDefault();
    };
    window.addEventListener(type, guard);
    cleanups.push(() => window.removeEventListener(type, guard));
  }
}

/** The rows' buttons (pause, resume, cancel, choose) and "resume all". */
function wireRowActions(
  els: PageElements,
  list: UploadList,
  uploader: PageUploader,
  openPicker: () => Promise<void>,
  say: (text: string) => void,
  schedule: () => void,
): void {
  function act(action: RowAction, key: string): Promise<void> {
    switch (action) {
      case "pause":
        return uploader.pause(key);
      case "resume":
        return uploader.resume(key);
      case "cancel":
        return uploader.cancel(key);
      case "choose":
        return openPicker();
    }
  }
  for (const container of [els.activeList, els.interruptedList]) {
    container.addEventListener("click", (event) => {
      const target = (event.target as Element).closest<HTMLButtonElement>("button[data-action]");
      const key = target && list.keyOf(target);
      if (!target || !key) return;
      const action = target.dataset.action as RowAction;
      // resume() runs inside this click: a kept file handle may need the person's permission.
      act(action, key).then(schedule, (error: unknown) => {
        say(`Could not ${action}: ${errorText(error)}`);
        schedule();
      });
    });
  }
  els.resumeAll.addEventListener("click", () => {
    const keys = uploader
      .list()
      .filter(canResumeWithoutFile)
      .map((s) => s.key);
    // All resume calls start within this click, each may show a permission prompt.
    void Promise.allSettled(keys.map((key) => uploader.resume(key))).then(schedule);
  });
}

function isRunning(s: UploadSnapshot): boolean {
  return s.state.kind === "hashing" || s.state.kind === "uploading";
}

function hasFiles(event: DragEvent): boolean {
  return event.dataTransfer?.types.includes("Files") ?? false;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
