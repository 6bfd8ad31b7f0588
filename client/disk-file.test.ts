import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer, text } from "node:stream/consumers";
import { afterAll, beforeAll, expect, test } from "vitest";
import { seededBytes } from "../test/support/seeded.ts";
import { FileChangedError, fileFromPath, readRange } from "./disk-file.ts";

const MiB = 1024 * 1024;
let dir = "";
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "disk-file-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

test("ranges of a file from disk are its bytes: empty, inside one read, across reads, to the end", async () => {
  const bytes = seededBytes(3 * MiB + 17, 3);
  const path = join(dir, "ranges.bin");
  await writeFile(path, bytes);
  const file = await fileFromPath(path);
  expect(file).toMatchObject({ name: "ranges.bin", size: bytes.length });
  for (const [start, end] of [
    [5, 5],
    [1, 100],
    [MiB - 3, 2 * MiB + 5],
    [2 * MiB, bytes.length],
  ] as const) {
    const got = new Uint8Array(await buffer(await readRange(file, start, end)));
    expect(got).toEqual(bytes.subarray(start, end));
  }
});

test("a Blob that is not a file from disk is read through its own stream", async () => {
  expect(await text(await readRange(new Blob(["hello, world"]), 7, 12))).toBe("world");
});

test("a file changed on disk after fileFromPath (size, or only its mtime) is refused with FileChangedError", async () => {
  const path = join(dir, "changed.bin");
  await writeFile(path, seededBytes(MiB, 4));
  const file = await fileFromPath(path);
  await utimes(path, new Date(), new Date(Date.now() + 60_000));
  await expect(readRange(file, 0, 10)).rejects.toThrow(FileChangedError);
  await writeFile(path, seededBytes(MiB + 1, 4));
  await expect(readRange(await fileFromPath(path), 0, 10)).resolves.toBeDefined();
  await expect(readRange(file, 0, 10)).rejects.toThrow(/changed on disk/);
});

test("fileFromPath refuses a directory", async () => {
  await expect(fileFromPath(dir)).rejects.toThrow(/not a regular file/);
});
