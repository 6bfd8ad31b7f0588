/**
 * The copy of a file kept in this browser's origin private file system (OPFS), one file per
 * upload key in the directory `edge-upload-staged`. This part runs where the bytes are: the
 * hasher's reader worker (hashing/reader.ts) writes each buffer it read into the copy before the
 * hasher gets it, and commits the copy at least every half checkpoint interval, so the copy is
 * never behind the hash (a checkpoint at offset X exists only once the copy durably holds X bytes).
 *
 * Two ways to write, chosen by what the browser has:
 * - `createSyncAccessHandle` (Chromium, Firefox >= 111, Safari >= 15.2; dedicated workers only):
 *   synchronous writes straight into the file, `flush()` to commit. Cheap, in place.
 * - `createWritable` elsewhere: writes land in a swap file and only a `close()` makes them the
 *   file's, so committing means closing and opening again with `keepExistingData` (which copies
 *   the file in Chromium: a cost that grows with the copy, paid only where sync handles are missing).
 */

/** The OPFS directory the copies live in; renaming it strands the copies deployed pages wrote. */
export const STAGE_DIR = "edge-upload-staged";

/** What the reader is asked to do besides reading: keep a copy of the file under `key`. */
export interface StageRequest {
  key: string;
  /** Commit the copy at least every this many bytes (the hasher's save step: half its checkpoint interval). */
  step: number;
}

/** What became of the copy, reported in order with the bytes (the hasher forwards it to the page). */
export type StageEvent =
  | { kind: "written"; offset: number } // the copy durably holds [0, offset)
  | { kind: "whole" } // the whole file is kept
  | { kind: "stopped"; why: "full" | "unavailable" }; // copying stopped (and the copy was removed); the hash goes on

/** The staging directory, or undefined when this browser has no OPFS (or `create` is false and it does not exist). */
export async function stageDirectory(create: boolean): Promise<FileSystemDirectoryHandle | undefined> {
  const storage = (globalThis.navigator as { storage?: Partial<StorageManager> } | undefined)?.storage;
  if (typeof storage?.getDirectory !== "function") return undefined;
  try {
    const root = await storage.getDirectory();
    return await root.getDirectoryHandle(STAGE_DIR, { create });
  } catch (error) {
    if (nameOf(error) === "NotFoundError" || nameOf(error) === "SecurityError") return undefined;
    throw error;
  }
}

export function nameOf(error: unknown): string {
  return error instanceof Error || error instanceof DOMException ? error.name : "";
}

/** A write into the copy; errors are the browser's (QuotaExceededError when storage is full). */
export interface StageSink {
  /** Bytes the copy held when it was opened. */
  readonly size: number;
  write(bytes: Uint8Array, at: number): Promise<void>;
  /** Makes what was written so far the copy's content, surviving a killed browser. */
  commit(): Promise<void>;
  close(): Promise<void>;
}

/** FileSystemSyncAccessHandle: TypeScript declares it for the WebWorker lib only, which clashes with DOM. */
interface SyncAccessHandle {
  write(buffer: Uint8Array, options?: { at?: number }): number;
  getSize(): number;
  flush(): void;
  close(): void;
}

/** Opens the copy of `key` for writing (created empty if absent); undefined where neither way to write exists. */
export async function openSink(key: string): Promise<StageSink | undefined> {
  const dir = await stageDirectory(true);
  if (!dir) return undefined;
  const handle = await dir.getFileHandle(key, { create: true });
  const sync = (handle as unknown as { createSyncAccessHandle?: () => Promise<SyncAccessHandle> }).createSyncAccessHandle;
  if (typeof sync === "function") return syncSink(await unlocked(() => sync.call(handle)));
  if (typeof handle.createWritable === "function") return writableSink(handle);
  return undefined;
}

/**
 * A pause or a finished hash terminates the reader worker that held the copy's access handle;
 * the browser releases that lock a moment later, so a run started right after may find it still
 * held (NoModificationAllowedError). It is tried again for up to ~2 s before staging gives up.
 */
async function unlocked<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (nameOf(error) !== "NoModificationAllowedError" || attempt >= 40) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function syncSink(h: SyncAccessHandle): StageSink {
  return {
    size: h.getSize(),
    async write(bytes, at) {
      const n = h.write(bytes, { at });
      if (n !== bytes.length) throw new DOMException(`wrote ${n} of ${bytes.length} bytes`, "QuotaExceededError");
    },
    async commit() {
      h.flush();
    },
    async close() {
      h.close();
    },
  };
}

async function writableSink(handle: FileSystemFileHandle): Promise<StageSink> {
  const size = (await handle.getFile()).size;
  let writable = await unlocked(() => handle.createWritable({ keepExistingData: true }));
  return {
    size,
    write: (bytes, at) => writable.write({ type: "write", position: at, data: bytes as Uint8Array<ArrayBuffer> }),
    async commit() {
      await writable.close();
      writable = await unlocked(() => handle.createWritable({ keepExistingData: true }));
    },
    close: () => writable.close(),
  };
}

/** Removes the copy of `key`; absent is fine, and so is a copy another worker still holds (the next start-up sweeps it). */
export async function removeCopy(key: string): Promise<void> {
  const dir = await stageDirectory(false).catch(() => undefined);
  await dir?.removeEntry(key).catch(() => undefined);
}
