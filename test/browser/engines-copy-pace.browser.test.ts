/**
 * Issue 18: the two paces of the copy kept in OPFS (client/staging/copier.ts), in every engine
 * (Chromium, Firefox ESR, WebKitGTK), on a profile on disk, with the real workers:
 * - alongside (4 cores or more): the copy is the file, and it comes from the buffers the hasher
 *   passed on (staging/pass.ts) rather than from reading the file a second time;
 * - after the hash (fewer cores, as this machine): nothing is written while the hash runs, and
 *   the whole copy follows it.
 * The hash is held to 12 MB/s so even WebKitGTK's createWritable copy keeps up with it. Still, a
 * copier that stalls past the hasher's wait budget (100 ms and 5%) gets buffers back-filled by its
 * own reads: with another browser test beside it on 2 cores, Firefox's copier once read 8 of 24
 * MiB itself. So "alongside" asserts that most of the copy was passed, not all of it.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import type { Harness } from "../pages/client-harness.ts";
import { ENGINES, type EngineBrowser, launch } from "../support/browsers.ts";
import { seededBytes } from "../support/seeded.ts";

const MiB = 1024 * 1024;
const SIZE = 24 * MiB + 3;
const RATE = 12_000_000;

type Staged = Awaited<ReturnType<Harness["hashStaged"]>>;

describe.each(ENGINES)("%s", (engine) => {
  const seed = 1850 + ENGINES.indexOf(engine);
  const digest = `sha256:${createHash("sha256").update(seededBytes(SIZE, seed)).digest("hex")}`;
  let profile = "";
  let browser: EngineBrowser;

  beforeAll(async () => {
    profile = await mkdtemp(join(tmpdir(), `copy-pace-${engine}-`));
    browser = await launch(engine, { profileDir: profile });
    await browser.open(`${inject("baseUrl")}/test/pages/client-harness`);
    await browser.waitFor(() => "harness" in globalThis, undefined, 30_000);
  });
  afterAll(async () => {
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  const hashStaged = (key: string, pace: "alongside" | "after-hash"): Promise<Staged> =>
    browser.evaluate(({ size, seed, key, pace, rate }) => (globalThis as unknown as { harness: Harness }).harness.hashStaged(size, seed, { key, pace, rate }), {
      size: SIZE,
      seed,
      key,
      pace,
      rate: RATE,
    });

  test("alongside: the copy is the file, written mostly from the hasher's own buffers (not read twice)", async () => {
    const r = await hashStaged(`${engine}-alongside`, "alongside");
    expect(r.result).toMatchObject({ kind: "done", digest });
    expect(r.copyDigest).toBe(digest);
    expect(r.copySize).toBe(SIZE);
    expect(r.happened.filter((h) => h !== "written")).toEqual(expect.arrayContaining(["hashed", "whole"]));
    expect(r.readAgain).toBeLessThanOrEqual(SIZE / 2);
  });

  test("after the hash: nothing is written while it runs; the whole copy follows, read from the file", async () => {
    const r = await hashStaged(`${engine}-after`, "after-hash");
    expect(r.result).toMatchObject({ kind: "done", digest });
    expect(r.copyDigest).toBe(digest);
    expect(r.happened[0]).toBe("hashed");
    expect(r.happened.at(-1)).toBe("whole");
    expect(r.readAgain).toBe(SIZE);
  });
});
