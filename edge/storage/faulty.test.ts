import { describe, expect, test } from "vitest";
import { readAll } from "./body.ts";
import { runDriverConformance } from "./conformance.ts";
import { PathNotFoundError, StorageUnavailableError, type StorageDriver } from "./driver.ts";
import { InjectedFault, SimulatedCrash, createFaultyDriver, isInjectedFault, mulberry32, type FaultyDriverOptions } from "./faulty.ts";
import { createMemoryDriver } from "./memory.ts";
import { recordingDriver, type RecordedOp } from "./testing.ts";

const text = async (driver: StorageDriver, key: string) => new TextDecoder().decode(await readAll((await driver.get(key)).body));
const absent = async (driver: StorageDriver, key: string) => (await driver.stat(key).catch((e: unknown) => e)) instanceof PathNotFoundError;
/** Records requested delays instead of waiting: these tests never depend on time passing. */
const fakeSleep = (delays: number[]) => async (ms: number) => void delays.push(ms);

// Without rates the wrapper must be invisible: the same conformance suite as every driver.
runDriverConformance("faulty wrapper without faults (over memory)", () => createFaultyDriver(createMemoryDriver(), { seed: 1 }), { copy: true });
runDriverConformance(
  "faulty wrapper, latency only (over memory without copy)",
  () => createFaultyDriver(createMemoryDriver({ copy: false }), { seed: 2, rates: { latency: 0.5 }, sleep: async () => undefined }),
  { copy: false },
);

describe("faulty storage driver", () => {
  test("mulberry32 is deterministic per seed and spreads over [0, 1)", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(xs.filter((x) => x < 0.5).length).toBeGreaterThan(400);
    expect(xs.filter((x) => x < 0.5).length).toBeLessThan(600);
    expect(mulberry32(43)()).not.toBe(xs[0]);
  });

  /** Runs 200 puts and returns which of them failed, and how. */
  async function failurePattern(seed: number) {
    const driver = createFaultyDriver(createMemoryDriver(), { seed, rates: { failBefore: 0.1, failAfter: 0.1 } });
    const pattern: string[] = [];
    for (let i = 0; i < 200; i++) {
      const err = await driver.put(`k/${i}`, "x").then(
        () => undefined,
        (e: unknown) => e,
      );
      pattern.push(err instanceof StorageUnavailableError && err.cause instanceof InjectedFault ? err.cause.kind : "ok");
    }
    return { pattern, stats: driver.stats };
  }

  test("the same seed gives the same faults; another seed others", async () => {
    const one = await failurePattern(7);
    expect((await failurePattern(7)).pattern).toEqual(one.pattern);
    expect((await failurePattern(8)).pattern).not.toEqual(one.pattern);
    expect(one.stats.operations).toBe(200);
    expect(one.stats.byOp.put).toBe(200);
    expect(one.stats.faults.failBefore).toBe(one.pattern.filter((p) => p === "failBefore").length);
    expect(one.stats.faults.failAfter).toBe(one.pattern.filter((p) => p === "failAfter").length);
    expect(one.stats.faults.failBefore).toBeGreaterThan(5);
    expect(one.stats.faults.failAfter).toBeGreaterThan(5);
  });

  test("failBefore: a typed StorageUnavailableError, and the store never saw the write", async () => {
    const memory = createMemoryDriver();
    const driver = createFaultyDriver(memory, { seed: 1, rates: { failBefore: 1 } });
    const err = await driver.put("a/b", "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ path: "a/b", driver: "memory", attempts: 1 });
    expect((err as Error).cause).toMatchObject({ kind: "failBefore", op: "put", tookEffect: false });
    expect(isInjectedFault(err)).toBe(true);
    expect(isInjectedFault(new PathNotFoundError("a", "memory"))).toBe(false);
    expect(await absent(memory, "a/b")).toBe(true);
  });

  test("failAfter: the write happened, only its answer was lost (also a multipart upload's creation)", async () => {
    const ops: RecordedOp[] = [];
    const memory = recordingDriver(createMemoryDriver(), ops);
    const driver = createFaultyDriver(memory, { seed: 1, rates: { failAfter: 1 } });
    const err = await driver.put("a/b", "x").catch((e: unknown) => e);
    expect((err as Error).cause).toMatchObject({ kind: "failAfter", op: "put", tookEffect: true });
    expect(await text(memory, "a/b")).toBe("x");
    await expect(driver.createMultipart("a/mp")).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(ops.filter((o) => o.op === "createMultipart")).toHaveLength(1);
  });

  test("only the listed operations are disturbed; all are counted", async () => {
    const memory = createMemoryDriver();
    const driver = createFaultyDriver(memory, { seed: 3, rates: { failBefore: 1 }, ops: ["stat"] });
    await driver.put("a/b", "x");
    expect(await text(driver, "a/b")).toBe("x");
    await expect(driver.stat("a/b")).rejects.toBeInstanceOf(StorageUnavailableError);
    const mp = await driver.createMultipart("a/c");
    await mp.uploadPart(1, new Uint8Array(3));
    await mp.abort();
    expect(driver.stats.byOp).toMatchObject({ put: 1, get: 1, stat: 1, createMultipart: 1, uploadPart: 1, abort: 1 });
    expect(driver.stats.operations).toBe(6);
    expect(driver.stats.faults.failBefore).toBe(1);
  });

  test("faultAt: faults at chosen operation indices, whatever the rates", async () => {
    const memory = createMemoryDriver();
    const driver = createFaultyDriver(memory, { seed: 1, faultAt: { 2: "failBefore", 3: "failAfter", 4: "timeout" }, sleep: async () => undefined });
    await driver.put("k/1", "x");
    const kinds: unknown[] = [];
    for (const n of [2, 3, 4]) kinds.push(((await driver.put(`k/${n}`, "x").catch((e: unknown) => e)) as Error).cause);
    await driver.put("k/5", "x");
    expect(kinds).toMatchObject([
      { kind: "failBefore", tookEffect: false },
      { kind: "failAfter", tookEffect: true },
      { kind: "timeout", tookEffect: true },
    ]);
    expect((await memory.list("k/")).keys).toEqual(["k/1", "k/3", "k/4", "k/5"]);
  });

  test("setEnabled(false) stops injecting; counting goes on", async () => {
    const driver = createFaultyDriver(createMemoryDriver(), { seed: 3, rates: { failBefore: 1 } });
    driver.setEnabled(false);
    await driver.put("a/b", "x");
    driver.setEnabled(true);
    await expect(driver.put("a/b", "y")).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(driver.stats.operations).toBe(2);
  });

  test("latency waits at most maxLatencyMs before the operation", async () => {
    const delays: number[] = [];
    const driver = createFaultyDriver(createMemoryDriver(), { seed: 5, rates: { latency: 1 }, maxLatencyMs: 7, sleep: fakeSleep(delays) });
    for (let i = 0; i < 50; i++) await driver.put(`k/${i}`, "x");
    expect(delays).toHaveLength(50);
    expect(delays.every((d) => Number.isInteger(d) && d >= 0 && d <= 7)).toBe(true);
    expect(new Set(delays).size).toBeGreaterThan(3);
    expect(driver.stats.faults.latency).toBe(50);
  });

  test("timeout: hangs for timeoutMs, then fails; the operation took effect in some cases and not in others", async () => {
    const delays: number[] = [];
    const memory = createMemoryDriver();
    const driver = createFaultyDriver(memory, { seed: 9, rates: { timeout: 1 }, timeoutMs: 30, sleep: fakeSleep(delays) });
    const effects: boolean[] = [];
    for (let i = 0; i < 20; i++) {
      const err = await driver.put(`k/${i}`, "x").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageUnavailableError);
      const cause = (err as Error).cause as InjectedFault;
      expect(cause.kind).toBe("timeout");
      expect(await absent(memory, `k/${i}`)).toBe(!cause.tookEffect);
      effects.push(cause.tookEffect);
    }
    expect(delays).toEqual(Array(20).fill(30));
    expect(effects).toContain(true);
    expect(effects).toContain(false);
  });

  describe("stale reads, as an eventually consistent S3-like store", () => {
    const stale = (memory: StorageDriver, extra: Partial<FaultyDriverOptions> = {}) =>
      createFaultyDriver(memory, { seed: 11, rates: { stale: 1 }, staleWindow: 3, ...extra });

    test("get and stat of an overwritten key answer the older version within the window, the newest after it", async () => {
      const memory = createMemoryDriver();
      const driver = stale(memory);
      await driver.put("a/info", "one");
      await driver.put("a/info", "two!");
      expect(await text(driver, "a/info")).toBe("one");
      expect((await driver.stat("a/info")).size).toBe(3);
      await driver.put("b/x", "1");
      await driver.put("b/y", "1");
      await driver.put("b/z", "1");
      expect(await text(driver, "a/info")).toBe("two!");
      expect(driver.stats.faults.stale).toBe(2);
    });

    test("a ranged get of an older version is cut from that version", async () => {
      const driver = stale(createMemoryDriver());
      await driver.put("a/info", "abcdef");
      await driver.put("a/info", "ABCDEFGH");
      const got = await driver.get("a/info", { range: { offset: 2, length: 3 } });
      expect(new TextDecoder().decode(await readAll(got.body))).toBe("cde");
      expect(got.range).toEqual({ offset: 2, length: 3 });
    });

    test("a recently created key may look absent; a recently deleted one present, in listings too", async () => {
      const memory = createMemoryDriver();
      await memory.put("p/old", "x");
      const driver = stale(memory, { staleWindow: 10 });
      await driver.put("p/new", "y");
      await driver.delete("p/old");
      expect(await absent(driver, "p/new")).toBe(true);
      expect(await text(driver, "p/old")).toBe("x");
      expect((await driver.list("p/")).keys).toEqual(["p/old"]);
      expect((await memory.list("p/")).keys).toEqual(["p/new"]);
    });

    test("without stale reads enabled nothing is remembered, and reads are fresh", async () => {
      const driver = createFaultyDriver(createMemoryDriver(), { seed: 11, rates: { failBefore: 0 } });
      await driver.put("a/info", "one");
      await driver.put("a/info", "two");
      expect(await text(driver, "a/info")).toBe("two");
      expect(driver.stats.faults.stale).toBe(0);
    });
  });

  describe("crash mode", () => {
    test("the crashAt-th operation is the last: it and every later call throw SimulatedCrash", async () => {
      const memory = createMemoryDriver();
      const driver = createFaultyDriver(memory, { seed: 1, crashAt: 3 });
      await driver.put("a/1", "x");
      const mp = await driver.createMultipart("a/mp");
      expect(driver.crashed).toBe(false);
      const err = await driver.put("a/3", "x").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SimulatedCrash);
      expect((err as SimulatedCrash).at).toBe(3);
      expect(driver.crashed).toBe(true);
      await expect(driver.get("a/1")).rejects.toBeInstanceOf(SimulatedCrash);
      await expect(mp.uploadPart(1, new Uint8Array(1))).rejects.toBeInstanceOf(SimulatedCrash);
      expect(() => driver.resumeMultipart("a/mp", mp.uploadId)).toThrow(SimulatedCrash);
      expect(await text(memory, "a/1")).toBe("x");
      expect(driver.stats.operations).toBe(3);
      expect(driver.stats.faults.crash).toBe(1);
    });

    test("the last operation takes effect for some seeds and not for others", async () => {
      const landed = new Set<boolean>();
      for (let seed = 0; seed < 20; seed++) {
        const memory = createMemoryDriver();
        const driver = createFaultyDriver(memory, { seed, crashAt: 1 });
        await expect(driver.put("a/b", "x")).rejects.toBeInstanceOf(SimulatedCrash);
        landed.add(!(await absent(memory, "a/b")));
      }
      expect([...landed].sort()).toEqual([false, true]);
    });

    test("an answer still due when the process dies is never delivered, though the store applied it", async () => {
      const memory = createMemoryDriver();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const slow: StorageDriver = { ...memory, put: async (k, b, o) => (await gate, memory.put(k, b, o)) };
      const driver = createFaultyDriver(slow, { seed: 1 });
      const pending = driver.put("a/b", "x").catch((e: unknown) => e);
      driver.crash();
      release();
      expect(await pending).toBeInstanceOf(SimulatedCrash);
      expect(await text(memory, "a/b")).toBe("x");
    });
  });
});
