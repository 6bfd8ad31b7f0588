/**
 * The driver conformance suite: every driver runs it (memory in Node, edge/storage/memory.test.ts;
 * R2 inside workerd, test/workerd/storage-r2.workerd.test.ts; S3 later), so the writer can rely on
 * the same behaviour everywhere, including R2's multipart rules.
 */
import { seededBytes as seeded } from "../../test/support/seeded.ts";
import { describe, expect, test } from "vitest";
import { readAll } from "./body.ts";
import {
  BadDigestError,
  InvalidPartError,
  InvalidPathError,
  InvalidRangeError,
  MultipartUnknownError,
  PathNotFoundError,
  PreconditionFailedError,
  type StorageDriver,
} from "./driver.ts";

const MiB = 1024 * 1024;

/**
 * Registers the suite for one driver; `factory` gives a driver over an empty (or private) keyspace.
 * `expect.copy` says whether this driver offers a server-side copy: the suite checks it does (and
 * that the copy works) or that it is absent, so a driver that silently loses its copy fails.
 */
export function runDriverConformance(name: string, factory: () => StorageDriver | Promise<StorageDriver>, expected: { copy: boolean }): void {
  // Each test uses its own prefix so a shared bucket (R2 in workerd) needs no cleanup between tests.
  let n = 0;
  const fresh = async () => ({ driver: await factory(), p: `conformance/t${++n}-${Date.now().toString(36)}/` });
  const text = async (body: ReadableStream<Uint8Array>) => new TextDecoder().decode(await readAll(body));

  describe(`storage driver conformance: ${name}`, () => {
    test("put then get returns the bytes, size and etag; stat agrees", async () => {
      const { driver, p } = await fresh();
      const bytes = seeded(1000, 1);
      const put = await driver.put(`${p}a`, bytes);
      expect(put.size).toBe(1000);
      const got = await driver.get(`${p}a`);
      expect(await readAll(got.body)).toEqual(bytes);
      expect(got.size).toBe(1000);
      expect(got.etag).toBe(put.etag);
      expect(got.range).toBeUndefined();
      const stat = await driver.stat(`${p}a`);
      expect(stat).toMatchObject({ key: `${p}a`, size: 1000, etag: put.etag });
      expect(stat.modified).toBeInstanceOf(Date);
    });

    test("put accepts strings (UTF-8), empty bodies and sized streams", async () => {
      const { driver, p } = await fresh();
      await driver.put(`${p}s`, "héllo");
      expect(await text((await driver.get(`${p}s`)).body)).toBe("héllo");
      await driver.put(`${p}e`, new Uint8Array(0));
      expect((await driver.stat(`${p}e`)).size).toBe(0);
      const bytes = seeded(70_000, 2);
      await driver.put(`${p}st`, { stream: chunked(bytes, 7_000), length: bytes.length });
      expect(await readAll((await driver.get(`${p}st`)).body)).toEqual(bytes);
    });

    test("get and stat of a missing key throw PathNotFoundError with path and driver", async () => {
      const { driver, p } = await fresh();
      const err = await driver.get(`${p}missing`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PathNotFoundError);
      expect(err).toMatchObject({ path: `${p}missing`, driver: driver.name });
      await expect(driver.stat(`${p}missing`)).rejects.toBeInstanceOf(PathNotFoundError);
    });

    test("ranged get: offset+length, open-ended, suffix, clamped end; a start past the end is InvalidRangeError", async () => {
      const { driver, p } = await fresh();
      await driver.put(`${p}r`, "0123456789");
      const mid = await driver.get(`${p}r`, { range: { offset: 2, length: 3 } });
      expect([await text(mid.body), mid.range, mid.size]).toEqual(["234", { offset: 2, length: 3 }, 10]);
      const open = await driver.get(`${p}r`, { range: { offset: 7 } });
      expect([await text(open.body), open.range]).toEqual(["789", { offset: 7, length: 3 }]);
      const suffix = await driver.get(`${p}r`, { range: { suffix: 4 } });
      expect([await text(suffix.body), suffix.range]).toEqual(["6789", { offset: 6, length: 4 }]);
      const clamped = await driver.get(`${p}r`, { range: { offset: 8, length: 100 } });
      expect([await text(clamped.body), clamped.range]).toEqual(["89", { offset: 8, length: 2 }]);
      await expect(driver.get(`${p}r`, { range: { offset: 10 } })).rejects.toBeInstanceOf(InvalidRangeError);
    });

    test("put onlyIf doesNotExist: first writer wins, second gets PreconditionFailedError and changes nothing", async () => {
      const { driver, p } = await fresh();
      await driver.put(`${p}c`, "first", { onlyIf: { doesNotExist: true } });
      await expect(driver.put(`${p}c`, "second", { onlyIf: { doesNotExist: true } })).rejects.toBeInstanceOf(PreconditionFailedError);
      expect(await text((await driver.get(`${p}c`)).body)).toBe("first");
    });

    test("put onlyIf etagMatches is compare-and-swap", async () => {
      const { driver, p } = await fresh();
      const v1 = await driver.put(`${p}cas`, "v1");
      const v2 = await driver.put(`${p}cas`, "v2", { onlyIf: { etagMatches: v1.etag } });
      await expect(driver.put(`${p}cas`, "v3", { onlyIf: { etagMatches: v1.etag } })).rejects.toBeInstanceOf(PreconditionFailedError);
      expect(await text((await driver.get(`${p}cas`)).body)).toBe("v2");
      expect(v2.etag).not.toBe(v1.etag);
    });

    test("put with sha256 stores a matching body and refuses another with BadDigestError", async () => {
      const { driver, p } = await fresh();
      const bytes = seeded(5000, 3);
      const hex = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
      await driver.put(`${p}ok`, bytes, { sha256: hex });
      expect((await driver.stat(`${p}ok`)).size).toBe(5000);
      await expect(driver.put(`${p}bad`, bytes, { sha256: "00".repeat(32) })).rejects.toBeInstanceOf(BadDigestError);
      await expect(driver.stat(`${p}bad`)).rejects.toBeInstanceOf(PathNotFoundError);
    });

    test("list is recursive, ordered, prefix-bounded and pages with a cursor", async () => {
      const { driver, p } = await fresh();
      const keys = ["a", "b/c", "b/d/e", "f"].map((k) => `${p}x/${k}`);
      await Promise.all([...keys, `${p}y/z`].map((k) => driver.put(k, "1")));
      const all = await driver.list(`${p}x/`);
      expect(all).toEqual({ keys });
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await driver.list(`${p}x/`, cursor === undefined ? { limit: 3 } : { limit: 3, cursor });
        expect(page.keys.length).toBeLessThanOrEqual(3);
        seen.push(...page.keys);
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined);
      expect(seen).toEqual(keys);
      expect(pages).toBe(2);
      expect((await driver.list(`${p}nothing/`)).keys).toEqual([]);
    });

    test("delete removes several keys at once; absent keys are not an error", async () => {
      const { driver, p } = await fresh();
      await Promise.all(["a", "b", "c"].map((k) => driver.put(`${p}${k}`, k)));
      await driver.delete(`${p}a`, `${p}b`, `${p}never`);
      expect((await driver.list(p)).keys).toEqual([`${p}c`]);
      await driver.delete();
    });

    test("malformed keys are refused with InvalidPathError before reaching the store", async () => {
      const { driver, p } = await fresh();
      for (const bad of ["", "/abs", `${p}a//b`, `${p}a/../b`, `${p}./b`, `${p}trailing/`, `${p}sp ace`, `${p}a%2Fb`, `${p}ü`, `${p}${"x".repeat(1100)}`]) {
        const err = await driver.put(bad, "x").catch((e: unknown) => e);
        expect(err, bad).toBeInstanceOf(InvalidPathError);
        expect(err).toMatchObject({ path: bad, driver: driver.name });
        await expect(driver.get(bad)).rejects.toBeInstanceOf(InvalidPathError);
      }
      await expect(driver.list("/abs/")).rejects.toBeInstanceOf(InvalidPathError);
      await expect(driver.list(`${p}..`)).rejects.toBeInstanceOf(InvalidPathError);
      expect(() => driver.resumeMultipart(`${p}../x`, "id")).toThrow(InvalidPathError);
    });

    test("multipart: equal 5 MiB parts and a short last part assemble in order; resumed handles work", async () => {
      const { driver, p } = await fresh();
      const data = seeded(2 * 5 * MiB + 123, 4);
      const mp = await driver.createMultipart(`${p}mp`);
      const p1 = await mp.uploadPart(1, data.subarray(0, 5 * MiB));
      // Another instance (after a restart) continues the same upload from its id.
      const again = driver.resumeMultipart(`${p}mp`, mp.uploadId);
      const p2 = await again.uploadPart(2, { stream: chunked(data.subarray(5 * MiB, 10 * MiB), MiB), length: 5 * MiB });
      const p3 = await again.uploadPart(3, data.subarray(10 * MiB));
      expect(await driver.list(p)).toEqual({ keys: [] }); // nothing visible before complete
      const done = await again.complete([p1, p2, p3]);
      expect(done.size).toBe(data.length);
      expect(sameBytes(await readAll((await driver.get(`${p}mp`)).body), data)).toBe(true);
      await expect(again.complete([p1, p2, p3])).rejects.toBeInstanceOf(MultipartUnknownError);
    });

    test("multipart: uploading a part number again replaces it; the stale etag is refused", async () => {
      const { driver, p } = await fresh();
      const mp = await driver.createMultipart(`${p}re`);
      const old = await mp.uploadPart(1, seeded(10, 5));
      const fresh1 = await mp.uploadPart(1, seeded(20, 6));
      await expect(mp.complete([old])).rejects.toBeInstanceOf(InvalidPartError);
      await mp.complete([fresh1]);
      expect(await readAll((await driver.get(`${p}re`)).body)).toEqual(seeded(20, 6));
    });

    test("multipart: unequal non-final parts are refused (R2 10048)", async () => {
      const { driver, p } = await fresh();
      const mp = await driver.createMultipart(`${p}uneq`);
      const parts = [
        await mp.uploadPart(1, new Uint8Array(5 * MiB)),
        await mp.uploadPart(2, new Uint8Array(5 * MiB + 1)),
        await mp.uploadPart(3, new Uint8Array(1)),
      ];
      await expect(mp.complete(parts)).rejects.toBeInstanceOf(InvalidPartError);
      await mp.abort();
    });

    test("multipart: a non-final part under 5 MiB is refused (R2 10011)", async () => {
      const { driver, p } = await fresh();
      const mp = await driver.createMultipart(`${p}small`);
      const parts = [await mp.uploadPart(1, new Uint8Array(MiB)), await mp.uploadPart(2, new Uint8Array(MiB))];
      await expect(mp.complete(parts)).rejects.toBeInstanceOf(InvalidPartError);
      await mp.abort();
    });

    test("multipart: abort discards the upload; later calls throw MultipartUnknownError; aborting twice is fine", async () => {
      const { driver, p } = await fresh();
      const mp = await driver.createMultipart(`${p}ab`);
      const part = await mp.uploadPart(1, new Uint8Array(10));
      await mp.abort();
      await mp.abort();
      await expect(mp.uploadPart(2, new Uint8Array(10))).rejects.toBeInstanceOf(MultipartUnknownError);
      await expect(mp.complete([part])).rejects.toBeInstanceOf(MultipartUnknownError);
      await expect(driver.resumeMultipart(`${p}ab`, "no-such-upload").uploadPart(1, new Uint8Array(1))).rejects.toBeInstanceOf(MultipartUnknownError);
      await expect(driver.stat(`${p}ab`)).rejects.toBeInstanceOf(PathNotFoundError);
    });

    test(expected.copy ? "copy copies server-side; a missing source is PathNotFoundError" : "copy is absent (the store has none)", async () => {
      const { driver, p } = await fresh();
      expect(typeof driver.copy).toBe(expected.copy ? "function" : "undefined");
      if (!driver.copy) return;
      const bytes = seeded(3000, 7);
      await driver.put(`${p}from`, bytes);
      await driver.copy(`${p}from`, `${p}to`);
      expect(await readAll((await driver.get(`${p}to`)).body)).toEqual(bytes);
      await expect(driver.copy(`${p}none`, `${p}to2`)).rejects.toBeInstanceOf(PathNotFoundError);
    });
  });
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export { seeded };

/** A stream delivering `bytes` in chunks of `size`. */
export function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/**
 * Byte equality by a plain loop: vitest's deep equality walks a multi-MiB array element by
 * element and takes seconds.
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
