import { expect, test } from "vitest";
import { seededBytes } from "../test/support/seeded.ts";
import { fingerprint } from "./fingerprint.ts";

const MiB = 1024 * 1024;
const file = (bytes: Uint8Array<ArrayBuffer>, name = "a.bin", lastModified = 1_700_000_000_000) =>
  new File([bytes], name, { type: "application/octet-stream", lastModified });

test("the same bytes, name and date give the same key (stable across sessions)", async () => {
  const bytes = seededBytes(3 * MiB);
  expect(await fingerprint(file(bytes))).toBe(await fingerprint(file(bytes.slice())));
  expect(await fingerprint(file(bytes))).toMatch(/^[0-9a-f]{32}$/);
});

test("same name and size but different first or last MiB, or date, gives another key", async () => {
  const bytes = seededBytes(3 * MiB);
  const key = await fingerprint(file(bytes));
  const head = bytes.slice();
  head[10] = (head[10] ?? 0) ^ 1;
  const tail = bytes.slice();
  tail[tail.length - 2] = (tail[tail.length - 2] ?? 0) ^ 1;
  expect(await fingerprint(file(head))).not.toBe(key);
  expect(await fingerprint(file(tail))).not.toBe(key);
  expect(await fingerprint(file(bytes, "a.bin", 1))).not.toBe(key);
  expect(await fingerprint(file(bytes, "b.bin"))).not.toBe(key);
});

test("tiny and empty files have keys too", async () => {
  expect(await fingerprint(file(new Uint8Array(0)))).not.toBe(await fingerprint(file(new Uint8Array(1))));
});
