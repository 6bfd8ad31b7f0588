import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { createFileCheckpointStore, createFileStore } from "./files.ts";
import { CHECKPOINT_VERSION, checkCheckpoint } from "../hashing/checkpoint.ts";
import { RECORD_VERSION, type UploadRecord } from "./records.ts";
import { createResumableSha256 } from "../../shared/sha256.ts";

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-upload-store-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const record: UploadRecord = {
  v: RECORD_VERSION,
  key: "abc123",
  name: "a.bin",
  size: 5,
  type: "",
  lastModified: 1,
  createdAt: 2,
  uploadUrl: "http://x/files/1",
};

test("records round-trip through JSON files and survive a new store on the same directory", async () => {
  await createFileStore(dir).put(record);
  const again = createFileStore(dir);
  expect(await again.get("abc123")).toEqual(record);
  expect(await again.list()).toEqual([record]);
  await again.delete("abc123");
  expect(await again.get("abc123")).toBeUndefined();
  expect((await readdir(join(dir, "uploads"))).filter((n) => n.endsWith(".tmp"))).toEqual([]);
});

test("a record of another format version or a broken file is ignored", async () => {
  const store = createFileStore(dir);
  await store.put(record);
  await writeFile(join(dir, "uploads", "old.json"), JSON.stringify({ ...record, key: "old", v: 0 }));
  await writeFile(join(dir, "uploads", "torn.json"), '{"v":1,');
  expect((await store.list()).map((r) => r.key)).toEqual(["abc123"]);
});

test("keys that are not fingerprints never become paths", async () => {
  await expect(createFileStore(dir).get("../../etc/passwd")).rejects.toThrow(/invalid store key/);
});

test("checkpoints keep the saved SHA-256 state (docs/hash-state.md) byte for byte", async () => {
  const h = await createResumableSha256();
  h.update(new Uint8Array([1, 2, 3]));
  const checkpoint = { v: CHECKPOINT_VERSION, size: 10, offset: 3, state: h.save() } as const;
  await createFileCheckpointStore(dir).set("abc123", checkpoint);
  const loaded = checkCheckpoint(await createFileCheckpointStore(dir).get("abc123"), 10);
  expect(loaded?.offset).toBe(3);
  expect(Array.from(loaded?.state ?? [])).toEqual(Array.from(checkpoint.state));
  expect(new TextDecoder().decode(loaded?.state.subarray(0, 4))).toBe("S256");
});
