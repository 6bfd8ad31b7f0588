/**
 * Where files come from: a drop (files and folders, as FileSystemFileHandles when the browser
 * gives them, so an upload can be resumed after a reload without picking the file again), the
 * File System Access pickers where they exist, and the plain <input type="file"> elsewhere.
 */

/** What the uploader accepts. A handle is better: it can be re-opened after a reload. */
export type FileSource = File | FileSystemFileHandle;

// The File System Access parts TypeScript's DOM library does not declare (Chromium has them).
interface HandleItem {
  getAsFileSystemHandle?(): Promise<FileSystemHandle | null>;
}
interface IterableDirectoryHandle extends FileSystemDirectoryHandle {
  values(): AsyncIterable<FileSystemHandle>;
}
interface PickerWindow {
  showOpenFilePicker?(options?: { multiple?: boolean }): Promise<FileSystemFileHandle[]>;
  showDirectoryPicker?(options?: { mode?: "read" }): Promise<FileSystemDirectoryHandle>;
}

/**
 * Everything dropped, folders expanded. Every item is read synchronously, inside the drop event:
 * the browser empties the DataTransfer as soon as the handler returns.
 */
export function filesFromDrop(data: DataTransfer): Promise<FileSource[]> {
  const items = Array.from(data.items).filter((item) => item.kind === "file");
  if (items.length === 0) return Promise.resolve(Array.from(data.files));
  const pending = items.map((item) => {
    const file = item.getAsFile();
    const handle = (item as DataTransferItem & HandleItem).getAsFileSystemHandle?.();
    const entry = item.webkitGetAsEntry();
    return fromItem(file, handle, entry);
  });
  return Promise.all(pending).then((lists) => lists.flat());
}

async function fromItem(file: File | null, handlePromise: Promise<FileSystemHandle | null> | undefined, entry: FileSystemEntry | null): Promise<FileSource[]> {
  // A script-built DataTransfer (or a file without a path) has no handle: fall back to the File.
  const handle = handlePromise ? await handlePromise.catch(() => null) : null;
  if (handle?.kind === "file") return [handle as FileSystemFileHandle];
  if (handle?.kind === "directory") return filesInDirectoryHandle(handle as FileSystemDirectoryHandle);
  if (entry?.isDirectory) return filesInDirectoryEntry(entry as FileSystemDirectoryEntry);
  return file ? [file] : [];
}

/** All files below a directory handle, depth first. */
export async function filesInDirectoryHandle(dir: FileSystemDirectoryHandle): Promise<FileSystemFileHandle[]> {
  const out: FileSystemFileHandle[] = [];
  for await (const child of (dir as IterableDirectoryHandle).values()) {
    if (child.kind === "file") out.push(child as FileSystemFileHandle);
    else out.push(...(await filesInDirectoryHandle(child as FileSystemDirectoryHandle)));
  }
  return out;
}

/** The older entries API (no handles): all files below a dropped folder. */
async function filesInDirectoryEntry(dir: FileSystemDirectoryEntry): Promise<File[]> {
  const reader = dir.createReader();
  const entries: FileSystemEntry[] = [];
  // readEntries returns at most 100 entries per call; an empty batch means the end.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    entries.push(...batch);
  }
  const out: File[] = [];
  for (const entry of entries) {
    if (entry.isDirectory) out.push(...(await filesInDirectoryEntry(entry as FileSystemDirectoryEntry)));
    else out.push(await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject)));
  }
  return out;
}

/** Whether the File System Access pickers exist (Chromium on desktop). */
export function hasFilePicker(): boolean {
  return typeof (window as Window & PickerWindow).showOpenFilePicker === "function";
}

export function hasDirectoryPicker(): boolean {
  return typeof (window as Window & PickerWindow).showDirectoryPicker === "function";
}

/** Opens the picker that gives handles; an empty list when the person closes it. */
export async function pickFiles(): Promise<FileSystemFileHandle[]> {
  try {
    return (await (window as Window & PickerWindow).showOpenFilePicker?.({ multiple: true })) ?? [];
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") return [];
    throw error;
  }
}

export async function pickDirectory(): Promise<FileSystemFileHandle[]> {
  try {
    const dir = await (window as Window & PickerWindow).showDirectoryPicker?.({ mode: "read" });
    return dir ? filesInDirectoryHandle(dir) : [];
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") return [];
    throw error;
  }
}
