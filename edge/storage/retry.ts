/**
 * The one retry policy of the storage drivers (S3 over HTTP, the R2 binding): bounded attempts,
 * exponential backoff with FULL jitter, and the store's own `Retry-After` honoured.
 *
 * Why full jitter (a delay drawn uniformly from [0, min(cap, base * 2^n)]) rather than a fixed
 * doubling: when a store throttles (S3 `SlowDown`, R2 10058) every writer it throttled retries;
 * with fixed delays they all come back at the same instant and are throttled again. Spreading them
 * over the whole window is what AWS's "Exponential Backoff and Jitter" measured as the fewest
 * calls and the shortest total time. A `Retry-After` from the store is a floor: the store knows
 * better than our exponent when it will take requests again.
 *
 * Attempts are bounded on purpose: a store that stays down must surface as an error the HTTP
 * layer can answer 503 + Retry-After to (StorageUnavailableError), so the client retries, rather
 * than hold the upload's Durable Object queue for minutes.
 *
 * Sleep and random are injectable so tests check delays without waiting or depending on chance.
 */

/** How many times and how patiently to retry. */
export interface RetryPolicy {
  /** Attempts in all, the first one included (1 means no retry). */
  attempts: number;
  /** The backoff window of the first retry, in ms; it doubles per retry. */
  baseDelayMs: number;
  /** No backoff window is wider than this, in ms. */
  maxDelayMs: number;
  /**
   * The longest `Retry-After` waited for, in ms. A store asking for longer is given up on at once
   * (its hint is passed on to the caller instead), since no request should wait that long here.
   */
  maxRetryAfterMs: number;
  /** Waits `ms` (tests inject a recorder). */
  sleep: (ms: number) => Promise<void>;
  /** Uniform in [0, 1) (tests inject fixed values). */
  random: () => number;
}

/**
 * The defaults: 6 attempts, windows of 200 ms doubling to at most 10 s. The five waits together
 * are at most 0.2 + 0.4 + 0.8 + 1.6 + 3.2 = 6.2 s (1.55 s on average), short enough to answer the
 * client within its own timeouts, long enough to ride out a throttling burst or a failover.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 20_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/** A policy from the defaults with some fields replaced; checks the numbers. */
export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...overrides };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) throw new RangeError(`retry attempts must be an integer >= 1, got ${policy.attempts}`);
  for (const field of ["baseDelayMs", "maxDelayMs", "maxRetryAfterMs"] as const) {
    if (!(policy[field] >= 0)) throw new RangeError(`retry ${field} must be >= 0, got ${policy[field]}`);
  }
  return policy;
}

/**
 * The wait before retry number `retry` (0 for the first retry): uniform in
 * [0, min(maxDelayMs, baseDelayMs * 2^retry)], and never less than the store's `retryAfterMs`.
 */
export function backoffDelay(policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs" | "random">, retry: number, retryAfterMs?: number): number {
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  const jittered = Math.floor(policy.random() * window);
  return Math.max(jittered, retryAfterMs ?? 0);
}

/**
 * A `Retry-After` header value (RFC 9110 §10.2.3: delay-seconds or an HTTP date) in ms from
 * `now`; undefined when absent or unreadable. A date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** What `classify` says about one failure. */
export interface Transience {
  /** The store's own hint of when to come back, in ms. */
  retryAfterMs?: number;
}

export interface RetryingOptions {
  policy?: Partial<RetryPolicy>;
  /**
   * Whether a failure may pass if tried again: a Transience when it may (throttling, 5xx, a
   * network error, a timeout), undefined when it is definite (not found, precondition failed,
   * bad digest...), which is rethrown at once.
   */
  classify: (err: unknown) => Transience | undefined;
  /**
   * The error to throw when a transient failure is not retried any more (attempts used up, or a
   * Retry-After longer than the policy waits). Default: the last failure itself.
   */
  exhausted?: (err: unknown, attempts: number, retryAfterMs: number | undefined) => unknown;
}

/**
 * Runs `fn` (given the 1-based attempt number) until it succeeds, fails definitely, or the
 * policy's attempts are used up.
 */
export async function retrying<T>(fn: (attempt: number) => Promise<T>, options: RetryingOptions): Promise<T> {
  const policy = retryPolicy(options.policy);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const transience = options.classify(err);
      if (!transience) throw err;
      const { retryAfterMs } = transience;
      if (attempt >= policy.attempts || (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs)) {
        throw options.exhausted ? options.exhausted(err, attempt, retryAfterMs) : err;
      }
      await policy.sleep(backoffDelay(policy, attempt - 1, retryAfterMs));
    }
  }
}
