/**
 * Node: upload records and hasher checkpoints as small JSON files in a directory
 * (default ~/.cache/edge-upload). Writes go to a temporary file that is renamed into place, so
 * a process killed mid-write leaves the previous version, never half a file.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { base64ToBytes, bytesToBase64 } from "../../shared/digest.ts";
import type { CheckpointStore, HashCheckpoint } from "../hashing/checkpoint.ts";
import { checkRecord, type UploadRecord, type UploadStore } from "./records.ts";

export function defaultStateDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
  return join(cache, "edge-upload");
}

/** Keys are fingerprint hex strings; anything else must not become a path. */
function fileName(key: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(key)) throw new TypeError(`invalid store key: ${key}`);
  return `${key}.json`;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/** A directory of `<key>.json` files, made on first use. */
function jsonFiles(dir: string, name: string) {
  const root = join(dir, name);
  const ready = mkdir(root, { recursive: true });
  const path = (key: string) => join(root, fileName(key));
  return {
    async read(key: string): Promise<unknown> {
      await ready;
      return readJson(path(key));
    },
    async write(key: string, text: string): Promise<void> {
      await ready;
      await writeAtomic(path(key), text);
    },
    async remove(key: string): Promise<void> {
      await rm(path(key), { force: true });
    },
    async readAll(): Promise<unknown[]> {
      await ready;
      const names = (await readdir(root)).filter((n) => n.endsWith(".json"));
      return Promise.all(names.map((n) => readJson(join(root, n))));
    },
  };
}

export function createFileStore(dir = defaultStateDir()): UploadStore {
  const files = jsonFiles(dir, "uploads");
  return {
    get: async (key) => checkRecord(await files.read(key)),
    put(record) {
      // Handles are browser objects; Node keeps the path instead.
      const { handle: _handle, ...plain } = record;
      return files.write(record.key, JSON.stringify(plain, null, 2));
    },
    delete: (key) => files.remove(key),
    list: async () => (await files.readAll()).flatMap((r) => checkRecord(r) ?? []) as UploadRecord[],
  };
}

/** Hasher checkpoints beside the records; the state bytes are stored as base64. */
export function createFileCheckpointStore(dir = defaultStateDir()): CheckpointStore {
  const files = jsonFiles(dir, "checkpoints");
  return {
    async get(key) {
      const raw = (await files.read(key)) as (Omit<HashCheckpoint, "state"> & { state: string }) | undefined;
      if (!raw || typeof raw.state !== "string") return raw;
      return { ...raw, state: base64ToBytes(raw.state) };
    },
    set: (key, checkpoint) => files.write(key, JSON.stringify({ ...checkpoint, state: bytesToBase64(checkpoint.state) })),
    delete: (key) => files.remove(key),
  };
}
