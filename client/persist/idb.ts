/**
 * The browser's upload records in IndexedDB (its own database, so clearing it touches nothing
 * else). IndexedDB stores FileSystemFileHandles by structured clone, which is what lets a
 * reload re-open a file without picking it again.
 */
import { createStore, del, get, set, values } from "idb-keyval";
import { checkRecord, type UploadStore } from "./store.ts";

export const RECORDS_DB = "edge-upload";

export function createIdbStore(dbName = RECORDS_DB): UploadStore {
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
