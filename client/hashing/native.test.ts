import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { seededBytes } from "../../test/support/seeded.ts";
import { FileChangedError, fileFromPath } from "../disk-file.ts";
import { createNativeHasher } from "./native.ts";

const MiB = 1024 * 1024;
let dir = "";
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "native-hasher-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A file on disk as Node's uploader sees it (`fileFromPath`). */
async function fileBlob(name: string, bytes: Uint8Array): Promise<Blob> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return fileFromPath(path);
}

const nodeDigest = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("createNativeHasher", () => {
  test.each([0, 1, 5 * MiB - 1, 5 * MiB + 3])("digest of a %i-byte file equals node:crypto's over its bytes, progress ends at its size", async (size) => {
    const bytes = seededBytes(size, 7);
    const offsets: number[] = [];
    const result = await createNativeHasher().start({ key: "k", file: await fileBlob(`f${size}`, bytes), onProgress: (o) => offsets.push(o) }).result;
    expect(result).toEqual({ kind: "done", digest: nodeDigest(bytes), resumedAt: undefined, bytesRead: size });
    expect(offsets.at(-1)).toBe(size);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });

  test("a paused run stops early; the next run hashes from byte 0 (no state is kept) to the right digest", async () => {
    const size = 24 * MiB + 5;
    const bytes = seededBytes(size, 8);
    const file = await fileBlob("paused", bytes);
    const hasher = createNativeHasher();
    const run = hasher.start({ key: "k", file, rate: 16 * MiB, onProgress: (offset) => offset >= 2 * MiB && run.pause() });
    const first = await run.result;
    expect(first.kind).toBe("paused");
    expect(first.bytesRead).toBeLessThan(size);
    expect(await hasher.peek("k", size)).toBeUndefined();
    let resumedAt: number | undefined = -1;
    const second = await hasher.start({ key: "k", file, onStart: (at) => (resumedAt = at) }).result;
    expect(resumedAt).toBeUndefined();
    expect(second).toEqual({ kind: "done", digest: nodeDigest(bytes), resumedAt: undefined, bytesRead: size });
  });

  test("a Blob not from a file on disk is hashed through its own stream", async () => {
    const bytes = seededBytes(3 * MiB + 1, 10);
    const result = await createNativeHasher().start({ key: "k", file: new Blob([bytes]) }).result;
    expect(result).toMatchObject({ kind: "done", digest: nodeDigest(bytes) });
  });

  test("a file that changed on disk after it was opened fails instead of giving a digest", async () => {
    const bytes = seededBytes(3 * MiB, 9);
    const file = await fileBlob("changed", bytes);
    await writeFile(join(dir, "changed"), bytes.subarray(0, MiB));
    await expect(createNativeHasher().start({ key: "k", file }).result).rejects.toThrow(FileChangedError);
  });
});
