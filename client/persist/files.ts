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

export function createFileStore(dir = defaultStateDir()): UploadStore {
  const root = join(dir, "uploads");
  const ready = mkdir(root, { recursive: true });
  return {
    async get(key) {
      await ready;
      return checkRecord(await readJson(join(root, fileName(key))));
    },
    async put(record) {
      await ready;
      // Handles are browser objects; Node keeps the path instead.
      const { handle: _handle, ...plain } = record;
      await writeAtomic(join(root, fileName(record.key)), JSON.stringify(plain, null, 2));
    },
    async delete(key) {
      await rm(join(root, fileName(key)), { force: true });
    },
    async list() {
      await ready;
      const names = (await readdir(root)).filter((n) => n.endsWith(".json"));
      const records = await Promise.all(names.map((n) => readJson(join(root, n))));
      return records.flatMap((r) => checkRecord(r) ?? []) as UploadRecord[];
    },
  };
}

/** Hasher checkpoints beside the records; the state bytes are stored as base64. */
export function createFileCheckpointStore(dir = defaultStateDir()): CheckpointStore {
  const root = join(dir, "checkpoints");
  const ready = mkdir(root, { recursive: true });
  return {
    async get(key) {
      await ready;
      const raw = (await readJson(join(root, fileName(key)))) as (Omit<HashCheckpoint, "state"> & { state: string }) | undefined;
      if (!raw || typeof raw.state !== "string") return raw;
      return { ...raw, state: base64ToBytes(raw.state) };
    },
    async set(key, checkpoint) {
      await ready;
      await writeAtomic(join(root, fileName(key)), JSON.stringify({ ...checkpoint, state: bytesToBase64(checkpoint.state) }));
    },
    async delete(key) {
      await rm(join(root, fileName(key)), { force: true });
    },
  };
}
