/**
 * The browser's persistence in IndexedDB: upload records and hasher checkpoints. Each lives in a
 * database of its own (clearing one touches nothing else, and idb-keyval opens one object store
 * per database); both names are defined here only, because the page and the hasher worker open
 * the checkpoint database from two threads. IndexedDB stores FileSystemFileHandles by structured
 * clone, which is what lets a reload re-open a file without picking it again.
 */
import { createStore, del, get, set, values } from "idb-keyval";
import type { CheckpointStore } from "../hashing/checkpoint.ts";
import { checkRecord, type UploadStore } from "./records.ts";

/** Database names, as deployed pages have written them: renaming one forgets what it holds. */
export const IDB_NAMES = { records: "edge-upload", checkpoints: "edge-upload-hasher" } as const;

export function createIdbStore(dbName: string = IDB_NAMES.records): UploadStore {
  const db = createStore(dbName, "uploads");
  return {
    get: async (key) => {
      const value = await get<unknown>(key, db);
      const record = checkRecord(value);
      if (value !== undefined && !record) await del(key, db); // another format version: forget it
      return record;
    },
    put: (record) => set(record.key, record, db),
    delete: (key) => del(key, db),
    list: async () => (await values<unknown>(db)).flatMap((v) => checkRecord(v) ?? []),
  };
}

/** Hasher checkpoints (hashing/checkpoint.ts), written by the hasher worker, peeked at and dropped by the page. */
export function createIdbCheckpointStore(): CheckpointStore {
  const db = createStore(IDB_NAMES.checkpoints, "checkpoints");
  return {
    get: (key) => get(key, db),
    set: (key, checkpoint) => set(key, checkpoint, db),
    delete: (key) => del(key, db),
  };
}
