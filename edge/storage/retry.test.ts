import { describe, expect, test } from "vitest";
import { backoffDelay, DEFAULT_RETRY_POLICY, parseRetryAfter, retrying, retryPolicy } from "./retry.ts";

/** A policy whose sleeps are recorded instead of waited, with a fixed "random" value. */
function recording(random: number, overrides: Parameters<typeof retryPolicy>[0] = {}) {
  const slept: number[] = [];
  const policy = { ...overrides, random: () => random, sleep: async (ms: number) => void slept.push(ms) };
  return { slept, policy };
}

describe("backoff with full jitter", () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000, random: () => 0 };

  test("the window doubles per retry up to the cap; random 0 gives 0 and random ~1 the window's top", () => {
    const top = { ...policy, random: () => 0.999_999 };
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n))).toEqual([0, 0, 0, 0, 0, 0]);
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(top, n))).toEqual([99, 199, 399, 799, 999, 999]);
  });

  test("the delay is uniform over the whole window (full jitter), not a fixed doubling", () => {
    expect(backoffDelay({ ...policy, random: () => 0.5 }, 2)).toBe(200);
    expect(backoffDelay({ ...policy, random: () => 0.25 }, 3)).toBe(200);
  });

  test("a Retry-After is a floor under the jittered delay", () => {
    expect(backoffDelay(policy, 0, 3000)).toBe(3000);
    expect(backoffDelay({ ...policy, random: () => 0.999_999 }, 5, 10)).toBe(999);
  });

  test("defaults: 6 attempts, 200 ms doubling to 10 s", () => {
    expect(DEFAULT_RETRY_POLICY).toMatchObject({ attempts: 6, baseDelayMs: 200, maxDelayMs: 10_000, maxRetryAfterMs: 20_000 });
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
  });
});

describe("Retry-After", () => {
  test("delay-seconds and HTTP dates, in ms", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
    expect(parseRetryAfter("3", now)).toBe(3000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe("retrying", () => {
  const transient = () => ({});

  test("retries transient failures with jittered, growing waits, then succeeds", async () => {
    const { slept, policy } = recording(0.5, { baseDelayMs: 100 });
    let calls = 0;
    const result = await retrying(
      async (attempt) => {
        calls++;
        if (attempt < 4) throw new Error("503");
        return "ok";
      },
      { policy, classify: transient },
    );
    expect([result, calls, slept]).toEqual(["ok", 4, [50, 100, 200]]);
  });

  test("a definite failure is thrown at once", async () => {
    const { slept, policy } = recording(0.5);
    const definite = new Error("not found");
    let calls = 0;
    const err = await retrying(
      async () => {
        calls++;
        throw definite;
      },
      { policy, classify: () => undefined },
    ).catch((e: unknown) => e);
    expect([err, calls, slept.length]).toEqual([definite, 1, 0]);
  });

  test("attempts are bounded; the exhausted hook gets the last failure, the count and the store's hint", async () => {
    const { slept, policy } = recording(0, { attempts: 3 });
    let calls = 0;
    const err = await retrying(
      async () => {
        calls++;
        throw new Error(`fail ${calls}`);
      },
      { policy, classify: () => ({ retryAfterMs: 1000 }), exhausted: (last, attempts, hint) => ({ last: (last as Error).message, attempts, hint }) },
    ).catch((e: unknown) => e);
    expect(err).toEqual({ last: "fail 3", attempts: 3, hint: 1000 });
    expect(slept).toEqual([1000, 1000]);
  });

  test("a Retry-After longer than the policy waits gives up at once, passing the hint on", async () => {
    const { slept, policy } = recording(0, { maxRetryAfterMs: 5000 });
    const err = await retrying(
      async () => {
        throw new Error("slow down");
      },
      { policy, classify: () => ({ retryAfterMs: 60_000 }), exhausted: (_e, attempts, hint) => ({ attempts, hint }) },
    ).catch((e: unknown) => e);
    expect([err, slept]).toEqual([{ attempts: 1, hint: 60_000 }, []]);
  });
});
