/**
 * When and how long the transfer waits before trying a failed request again.
 *
 * Faults of the server or the store (5xx, a dropped connection) are temporary by nature, so a
 * page keeps retrying them for as long as it is open, and a command line process for a bounded
 * number of attempts (it cannot tell a person it is waiting; `maxAttempts`). The wait grows
 * exponentially with full jitter (uniform in [0, min(cap, base * 2^n)]), so thousands of clients
 * that lost the same server do not come back in step; a `Retry-After` the server sent with a
 * 429 or 503 is a floor instead, since the server knows when it expects to cope again.
 */
import type * as tus from "tus-js-client";
import type { RetryOptions } from "./types.ts";

export const DEFAULT_RETRY = { maxAttempts: Infinity, baseDelayMs: 1000, maxDelayMs: 60_000 } as const;
/** The Node uploader and the CLI give up after this many tries (a few minutes of waiting). */
export const NODE_MAX_ATTEMPTS = 10;
/** A Retry-After beyond this is cut to it: a wrong header must not park an upload for a day. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

export interface RetryPolicy {
  readonly maxAttempts: number;
  /** Whether another try is allowed after `failures` failed tries in a row. */
  allows(failures: number): boolean;
  /** How long to wait before retry number `retry` (0-based), given the server's Retry-After in ms. */
  delay(retry: number, retryAfterMs?: number): number;
}

export interface RetryDeps {
  /** Uniform in [0, 1); injectable so tests can pin the jitter. */
  random?: () => number;
}

/** Exponential backoff with full jitter, bounded by `maxAttempts`. */
export function createRetryPolicy(options: RetryOptions = {}, deps: RetryDeps = {}): RetryPolicy {
  const random = deps.random ?? Math.random;
  const maxAttempts = options.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
  const base = options.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs;
  const cap = options.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  if (!(maxAttempts >= 1)) throw new RangeError(`retry.maxAttempts must be >= 1 (Infinity: forever), not ${maxAttempts}`);
  if (!(base >= 0) || !(cap >= 0)) throw new RangeError("retry.baseDelayMs and retry.maxDelayMs must be >= 0");
  return policy(maxAttempts, (retry) => random() * Math.min(cap, base * 2 ** retry), random);
}

/**
 * The older `retryDelays` option: a fixed wait per retry and as many retries as entries, as
 * before (still honouring Retry-After). Kept so existing callers behave as they did.
 */
export function fixedDelayPolicy(delays: readonly number[], deps: RetryDeps = {}): RetryPolicy {
  return policy(delays.length + 1, (retry) => delays[Math.min(retry, delays.length - 1)] ?? 0, deps.random ?? Math.random);
}

function policy(maxAttempts: number, backoff: (retry: number) => number, random: () => number): RetryPolicy {
  return {
    maxAttempts,
    allows: (failures) => failures < maxAttempts,
    delay(retry, retryAfterMs) {
      if (retryAfterMs === undefined) return Math.round(backoff(retry));
      // The server's hint is a floor. A little jitter on top (up to 20%, at most 1 s) keeps the
      // clients it told the same moment from arriving together; 0 stays 0.
      const floor = Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
      return Math.round(floor + random() * Math.min(1000, floor * 0.2));
    },
  };
}

/**
 * Statuses worth another try: none (network), 5xx (the server or its store), 409 (offset
 * mismatch: tus HEADs and continues at the server's offset), 423 (locked), 429 (rate limited),
 * 460 (checksum mismatch: the bytes broke on the way). Every other 4xx is an answer, not a fault.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 0 || status >= 500 || status === 409 || status === 423 || status === 429 || status === 460;
}

/** `Retry-After` (delay-seconds or an HTTP-date) in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP-date names its day and month; Date.parse alone would read "-5" as a year.
  const at = /[a-z]/i.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The server's Retry-After on a 429 or 503 answer (other statuses do not carry one by RFC 9110's use). */
export function retryAfterOf(res: tus.HttpResponse | null | undefined, now = Date.now()): number | undefined {
  const status = res?.getStatus() ?? 0;
  if (status !== 429 && status !== 503) return undefined;
  return parseRetryAfter(res?.getHeader("Retry-After"), now);
}
