import { describe, expect, test } from "vitest";
import { createRetryPolicy, DEFAULT_RETRY, fixedDelayPolicy, isRetryableStatus, MAX_RETRY_AFTER_MS, NODE_MAX_ATTEMPTS, parseRetryAfter } from "./retry.ts";
import { retryNotice } from "./errors.ts";
import { formatDuration } from "./progress.ts";
import { retryPolicyFor } from "./uploader.ts";

const fixed = (value: number) => () => value;
const ALMOST_ONE = 1 - Number.EPSILON;

describe("backoff with full jitter", () => {
  test("retry n waits within [0, min(cap, base * 2^n)], covering both ends", () => {
    const options = { baseDelayMs: 100, maxDelayMs: 5000 };
    const low = createRetryPolicy(options, { random: fixed(0) });
    const high = createRetryPolicy(options, { random: fixed(ALMOST_ONE) });
    for (let n = 0; n < 12; n++) {
      const bound = Math.min(5000, 100 * 2 ** n);
      expect(low.delay(n)).toBe(0);
      expect(high.delay(n)).toBeLessThanOrEqual(bound);
      expect(high.delay(n)).toBeGreaterThanOrEqual(bound - 1);
    }
  });

  test("the jitter spreads the waits (not one fixed delay per attempt)", () => {
    let i = 0;
    const spread = [0.1, 0.5, 0.9];
    const policy = createRetryPolicy({ baseDelayMs: 1000, maxDelayMs: 60_000 }, { random: () => spread[i++ % 3] ?? 0 });
    expect([policy.delay(3), policy.delay(3), policy.delay(3)]).toEqual([800, 4000, 7200]);
  });

  test("the cap holds at any attempt, even past where 2^n overflows to Infinity", () => {
    const policy = createRetryPolicy({ baseDelayMs: 1000, maxDelayMs: 30_000 }, { random: fixed(ALMOST_ONE) });
    for (const n of [5, 10, 50, 1100]) expect(policy.delay(n)).toBeLessThanOrEqual(30_000);
  });

  test("defaults: 1 s base, 60 s cap, retry forever", () => {
    const policy = createRetryPolicy({}, { random: fixed(ALMOST_ONE) });
    expect(DEFAULT_RETRY).toEqual({ maxAttempts: Infinity, baseDelayMs: 1000, maxDelayMs: 60_000 });
    expect(policy.delay(0)).toBe(1000);
    expect(policy.delay(20)).toBe(60_000);
  });

  test("options that cannot work are refused", () => {
    expect(() => createRetryPolicy({ maxAttempts: 0 })).toThrow(RangeError);
    expect(() => createRetryPolicy({ baseDelayMs: -1 })).toThrow(RangeError);
    expect(() => createRetryPolicy({ maxAttempts: Number.NaN })).toThrow(RangeError);
  });
});

describe("Retry-After", () => {
  test("parsed as seconds or as an HTTP-date; unreadable values are ignored", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("7", now)).toBe(7000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 23:00:00 GMT", now)).toBe(0); // in the past: now
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  test("is a floor over the backoff, with at most 20% (<= 1 s) of jitter on top", () => {
    const low = createRetryPolicy({ baseDelayMs: 1000, maxDelayMs: 2000 }, { random: fixed(0) });
    const high = createRetryPolicy({ baseDelayMs: 1000, maxDelayMs: 2000 }, { random: fixed(ALMOST_ONE) });
    // 8 s is beyond the 2 s cap: the server's word wins over our cap.
    expect(low.delay(0, 8000)).toBe(8000);
    expect(high.delay(0, 8000)).toBe(9000);
    expect(high.delay(0, 2000)).toBe(2400);
    expect(high.delay(5, 0)).toBe(0); // "retry now" stays now
  });

  test("an absurd Retry-After is cut to 10 minutes", () => {
    const policy = createRetryPolicy({}, { random: fixed(0) });
    expect(policy.delay(0, 24 * 3600_000)).toBe(MAX_RETRY_AFTER_MS);
  });
});

describe("attempts", () => {
  test("forever by default: any number of failures in a row may be retried", () => {
    const policy = createRetryPolicy();
    expect(policy.maxAttempts).toBe(Infinity);
    expect(policy.allows(1)).toBe(true);
    expect(policy.allows(1_000_000)).toBe(true);
  });

  test("bounded: maxAttempts tries in all, so the last failure is not retried", () => {
    const policy = createRetryPolicy({ maxAttempts: 10 });
    expect(policy.allows(9)).toBe(true);
    expect(policy.allows(10)).toBe(false);
  });

  test("the uploader's options: browsers forever, Node bounded, explicit values win", () => {
    expect(retryPolicyFor({}).maxAttempts).toBe(Infinity);
    expect(retryPolicyFor({}, NODE_MAX_ATTEMPTS).maxAttempts).toBe(10);
    expect(retryPolicyFor({ retry: { baseDelayMs: 5 } }, NODE_MAX_ATTEMPTS).maxAttempts).toBe(10);
    expect(retryPolicyFor({ retry: { maxAttempts: Infinity } }, NODE_MAX_ATTEMPTS).maxAttempts).toBe(Infinity);
    expect(retryPolicyFor({ retry: { maxAttempts: 3 }, retryDelays: [1, 2] }).maxAttempts).toBe(3);
  });

  test("the deprecated retryDelays keeps its meaning: fixed waits, one retry per entry", () => {
    const policy = retryPolicyFor({ retryDelays: [0, 1000, 3000] });
    expect(policy.maxAttempts).toBe(4);
    expect([0, 1, 2].map((n) => policy.delay(n))).toEqual([0, 1000, 3000]);
    expect(fixedDelayPolicy([500], { random: fixed(0) }).delay(0, 4000)).toBe(4000);
  });
});

test("retried statuses: none (network), 5xx, 409, 423, 429, 460; no other 4xx", () => {
  for (const status of [0, 500, 502, 503, 504, 409, 423, 429, 460]) expect(isRetryableStatus(status), String(status)).toBe(true);
  for (const status of [400, 401, 403, 404, 410, 412, 413, 415, 416, 422, 499]) expect(isRetryableStatus(status), String(status)).toBe(false);
});

test("the row's message while it waits says what failed and when it tries again", () => {
  const now = 1_000_000;
  const state = { failures: 2, maxAttempts: Infinity, status: 503, code: "STORAGE_UNAVAILABLE", at: now + 8000 };
  expect(retryNotice(state, now)).toEqual({
    code: "SERVER",
    message: "The upload server is unavailable (503 STORAGE_UNAVAILABLE); retrying in 8 s.",
    retryable: true,
  });
  expect(retryNotice({ ...state, at: now }, now).message).toMatch(/; retrying now\.$/);
  expect(retryNotice({ ...state, status: 0, code: undefined, maxAttempts: 10 }, now)).toMatchObject({
    code: "NETWORK",
    message: "The connection to the upload server failed; retrying in 8 s (attempt 3 of 10).",
  });
  expect(formatDuration(185_000)).toBe("3 min");
  expect(formatDuration(3_900_000)).toBe("1 h 5 min");
});
