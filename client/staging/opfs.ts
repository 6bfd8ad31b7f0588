/**
 * The copy of a file kept in this browser's origin private file system (OPFS), one file per
 * upload key in the directory `edge-upload-staged`. This part is the layout and the writing; the
 * copier worker (copier.ts) copies the file with it, beside the hasher, and commits the copy at
 * the hasher's save step; only a whole copy ever stands in for the file (staging.ts).
 *
 * Two ways to write, chosen by what the browser has:
 * - `createSyncAccessHandle` (Chromium, Firefox >= 111, Safari >= 15.2; dedicated workers only):
 *   synchronous writes straight into the file, `flush()` to commit. Cheap, in place.
 * - `createWritable` elsewhere (and in WebKitGTK, whose backend refuses sync handles): writes land
 *   in a swap file and only a `close()` makes them the file's, so committing means closing and
 *   opening again with `keepExistingData` (which copies the file: a cost that grows with the copy,
 *   paid only where sync handles are missing; WebKitGTK 2.50 copied at 20-40 MB/s that way).
 */

/** The OPFS directory the copies live in; renaming it strands the copies deployed pages wrote. */
export const STAGE_DIR = "edge-upload-staged";

/** What became of the copy, as the copier reports it to the page. */
export type StageEvent =
  | { kind: "written"; offset: number } // the copy durably holds [0, offset)
  | { kind: "whole"; spent?: CopyTimes } // the whole file is kept
  | { kind: "stopped"; why: "full" | "unavailable" | "slow" }; // copying stopped (and the copy was removed); the hash goes on

/**
 * Milliseconds the copier spent getting bytes (waiting for the hasher's buffers or reading the file
 * itself), writing the copy and committing it, in this run, and the bytes it read from the file
 * itself rather than taking them from the hasher (bench item 1's breakdown).
 */
export interface CopyTimes {
  read: number;
  write: number;
  commit: number;
  readAgain: number;
}

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
  /** Writes go straight into the file (a sync access handle), not through a swap file. */
  readonly inPlace: boolean;
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
  if (typeof sync === "function" && (await syncHandlesWork())) return syncSink(await unlocked(() => sync.call(handle)));
  if (typeof handle.createWritable === "function") return writableSink(handle);
  return undefined;
}

let syncWorks: Promise<boolean> | undefined;

/**
 * Whether `createSyncAccessHandle` works here, asked once per worker of a throwaway file. WebKitGTK
 * (2.50) has the method but its storage backend refuses it (NotSupportedError: "Backend does not
 * support this operation"), and the file it was refused on then refuses `createWritable` too in
 * that worker (InvalidStateError): asked of the copy itself, the copy would be lost for this run.
 */
export function syncHandlesWork(): Promise<boolean> {
  syncWorks ??= (async () => {
    const root = await navigator.storage.getDirectory();
    const name = `edge-upload-probe-${Math.random().toString(36).slice(2)}`;
    const file = await root.getFileHandle(name, { create: true });
    try {
      const open = (file as unknown as { createSyncAccessHandle: () => Promise<SyncAccessHandle> }).createSyncAccessHandle;
      (await open.call(file)).close();
      return true;
    } catch {
      return false;
    } finally {
      await root.removeEntry(name).catch(() => undefined);
    }
  })().catch(() => false);
  return syncWorks;
}

/**
 * A pause or forget() terminates the copier worker that held the copy's access handle; the
 * browser releases that lock a moment later, so a run started right after may find it still
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
    inPlace: true,
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
    inPlace: false,
    // WebKitGTK (2.50) writes the whole buffer under a view, not the view: the 3-byte tail of a
    // file written from a 4 MiB buffer made the copy 4 MiB longer (engines-copy-pace test). A view
    // short of its buffer goes as a copy of its own.
    write: (bytes, at) =>
      writable.write({ type: "write", position: at, data: (bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()) as Uint8Array<ArrayBuffer> }),
    async commit() {
      await writable.close();
      writable = await unlocked(() => handle.createWritable({ keepExistingData: true }));
    },
    close: () => writable.close(),
  };
}

/**
 * Removes the copy of `key`; absent is fine. A copier just terminated may still hold the file for a
 * moment (tried again for ~2 s); one that holds it longer leaves it to the next start-up's sweep.
 */
export async function removeCopy(key: string): Promise<void> {
  const dir = await stageDirectory(false).catch(() => undefined);
  await unlocked(() => dir?.removeEntry(key) ?? Promise.resolve()).catch(() => undefined);
}
