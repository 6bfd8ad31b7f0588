/**
 * The page's side of the copies kept in this browser (opfs.ts has the layout, copier.ts the
 * writing in a worker of its own): whether a file may be copied (limit, quota), the copy as the
 * file it stands for after a crash (checked against the upload's fingerprint first), and removal.
 *
 * Why: without a FileSystemFileHandle (Firefox, WebKit, or any file from a plain
 * <input type=file>) a crashed upload otherwise needs the person to find the same file again.
 */
import { fingerprint, type FileIdentity } from "../fingerprint.ts";
import type { StagedState } from "../types.ts";
import { nameOf, removeCopy, stageDirectory } from "./opfs.ts";

export const DEFAULT_STAGE_LIMIT = 4 * 1024 ** 3;

/** Room left besides the copy, so staging never takes the browser's last bytes of quota. */
const QUOTA_MARGIN = 64 * 1024 * 1024;

export type Admission = { kind: "stage" } | Extract<StagedState, { kind: "unavailable" | "over-limit" }>;

export type FoundCopy =
  | { kind: "ok"; file: File } // the whole file, its fingerprint is the key
  | { kind: "missing" } // no copy (never made, removed, or no OPFS)
  | { kind: "partial"; bytes: number } // the hash had not got to the end: the file is still needed
  | { kind: "unusable" }; // not this file (size or fingerprint differ): removed

export interface Staging {
  /** Whether a file of `size` bytes may be copied now: under `stageLimit` and within the free quota. */
  admit(key: string, size: number): Promise<Admission>;
  /** The kept copy of an upload, as the file it stands for, when it is whole and its fingerprint is the key. */
  open(upload: FileIdentity & { key: string }): Promise<FoundCopy>;
  remove(key: string): Promise<void>;
  /** Removes copies whose upload no longer exists (done, cancelled or forgotten in a session that crashed before removing it). */
  sweep(keep: ReadonlySet<string>): Promise<void>;
}

/** OPFS staging with a size limit; in a browser without OPFS every admission says "unavailable". */
export function createOpfsStaging(limit: number = DEFAULT_STAGE_LIMIT): Staging {
  let persisted: Promise<boolean> | undefined;
  const storage = (): Partial<StorageManager> | undefined => (globalThis.navigator as { storage?: Partial<StorageManager> } | undefined)?.storage;
  const copySize = async (key: string): Promise<number> => {
    const dir = await stageDirectory(false);
    if (!dir) return 0;
    try {
      return (await (await dir.getFileHandle(key)).getFile()).size;
    } catch {
      return 0;
    }
  };
  return {
    async admit(key, size) {
      if (size > limit) return { kind: "over-limit", why: "limit", limit };
      const s = storage();
      if (typeof s?.getDirectory !== "function") return { kind: "unavailable" };
      // Ask once per page that the browser keep this origin's storage under pressure (Chromium
      // decides without a prompt; Firefox may ask the person). Staging does not wait for the answer.
      persisted ??= (s.persist?.() ?? Promise.resolve(false)).catch(() => false);
      if (typeof s.estimate === "function") {
        const { quota, usage } = await s.estimate();
        if (quota !== undefined) {
          const needed = size - (await copySize(key));
          if (needed > quota - (usage ?? 0) - QUOTA_MARGIN)
            return { kind: "over-limit", why: "quota", limit: Math.max(0, quota - (usage ?? 0) - QUOTA_MARGIN) };
        }
      }
      return { kind: "stage" };
    },

    async open(upload) {
      const dir = await stageDirectory(false).catch(() => undefined);
      if (!dir) return { kind: "missing" };
      let stored: File;
      try {
        stored = await (await dir.getFileHandle(upload.key)).getFile();
      } catch (error) {
        if (nameOf(error) === "NotFoundError" || nameOf(error) === "TypeError") return { kind: "missing" };
        throw error;
      }
      if (stored.size < upload.size) return { kind: "partial", bytes: stored.size };
      // The copy stands for the person's file: same name, type and date, so its fingerprint
      // (which also samples the first and last MiB) must be the upload's key.
      const file = new File([stored], upload.name, { type: upload.type, lastModified: upload.lastModified });
      if (stored.size !== upload.size || (await fingerprint(file)) !== upload.key) {
        await removeCopy(upload.key);
        return { kind: "unusable" };
      }
      return { kind: "ok", file };
    },

    remove: removeCopy,

    async sweep(keep) {
      const dir = await stageDirectory(false).catch(() => undefined);
      if (!dir) return;
      const names: string[] = [];
      for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
      for (const name of names) if (!keep.has(name)) await removeCopy(name);
    },
  };
}
