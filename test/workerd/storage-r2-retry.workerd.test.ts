/**
 * The R2 driver over a flaky binding: the test bucket (local R2 in workerd) behind a Proxy that
 * throws the errors the binding throws when R2 or the network between fails. Sleeps are recorded,
 * not waited.
 */
import { env } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { readAll } from "../../edge/storage/body.ts";
import { seeded } from "../../edge/storage/conformance.ts";
import { MultipartUnknownError, PreconditionFailedError, StorageUnavailableError } from "../../edge/storage/driver.ts";
import { createR2Driver, r2Transience } from "../../edge/storage/r2.ts";
import type { RetryPolicy } from "../../edge/storage/retry.ts";

declare module "cloudflare:test" {
  interface ProvidedEnv {
    BUCKET: R2Bucket;
  }
}

const MiB = 1024 * 1024;
let n = 0;
const prefix = () => `r2-retry/t${++n}-${Date.now().toString(36)}/`;
const INTERNAL = "We encountered an internal error. Please try again. (10001)";

type Fault = "pass" | "throw" | "lose";

/**
 * A binding whose `method` calls (on the bucket or on a multipart upload it returns) go through
 * `rule`: "throw" fails without reaching R2, "lose" lets R2 act and then fails.
 */
function flakyBucket(method: string, rule: (call: number) => Fault, message = INTERNAL) {
  let calls = 0;
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, prop) {
        const value: unknown = Reflect.get(t, prop, t);
        if (typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          if (prop === method) {
            const fault = rule(calls++);
            if (fault === "throw") throw new Error(`${String(prop)}: ${message}`);
            if (fault === "lose") {
              await (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
              throw new Error(`${String(prop)}: Network connection lost.`);
            }
          }
          const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
          return prop === "createMultipartUpload" ? wrap(result as R2MultipartUpload) : result;
        };
      },
    });
  const bucket = wrap(env.BUCKET);
  // resumeMultipartUpload is synchronous: wrap its handle too.
  const resumed = new Proxy(bucket, {
    get(t, prop) {
      if (prop === "resumeMultipartUpload") return (key: string, id: string) => wrap(env.BUCKET.resumeMultipartUpload(key, id));
      return Reflect.get(t, prop, t);
    },
  });
  return { bucket: resumed, calls: () => calls };
}

function recorded(overrides: Partial<RetryPolicy> = {}) {
  const slept: number[] = [];
  return { slept, retry: { random: () => 0.5, sleep: async (ms: number) => void slept.push(ms), ...overrides } satisfies Partial<RetryPolicy> };
}

describe("r2 driver: transient binding errors", () => {
  test("which errors are transient: internal errors, throttling, network trouble; never not-found, precondition, digest or part errors", () => {
    for (const message of [
      INTERNAL,
      "put: Service Unavailable (10043)",
      "put: Reduce your rate of requests (10058)",
      "Network connection lost.",
      "get: Please try again later",
    ]) {
      expect(r2Transience(new Error(message)), message).toBeDefined();
    }
    for (const message of [
      "uploadPart: The specified multipart upload does not exist. (10024)",
      "completeMultipartUpload: One or more of the specified parts could not be found. (10025)",
      "put: The SHA-256 checksum you specified did not match what we received.",
      "get: The requested range is not satisfiable (10039)",
      "put: Precondition Failed (10031)",
    ]) {
      expect(r2Transience(new Error(message)), message).toBeUndefined();
    }
  });

  test("a put, a get, a list and a head failing once with an internal error are retried after a jittered wait", async () => {
    const key = `${prefix()}k`;
    for (const method of ["put", "get", "list", "head"]) {
      const flaky = flakyBucket(method, (call) => (call === 0 ? "throw" : "pass"));
      const { slept, retry } = recorded();
      const driver = createR2Driver(flaky.bucket, { retry });
      if (method === "put") await driver.put(key, "retried");
      if (method === "get") expect(new TextDecoder().decode(await readAll((await driver.get(key)).body))).toBe("retried");
      if (method === "list") expect((await driver.list(key)).keys).toEqual([key]);
      if (method === "head") expect((await driver.stat(key)).size).toBe(7);
      expect([method, flaky.calls(), slept]).toEqual([method, 2, [100]]);
    }
  });

  test("multipart calls are retried; a definite error (no such upload) is not", async () => {
    const key = `${prefix()}mp`;
    const flaky = flakyBucket("uploadPart", (call) => (call === 0 ? "throw" : "pass"));
    const { slept, retry } = recorded();
    const driver = createR2Driver(flaky.bucket, { retry });
    const mp = await driver.createMultipart(key);
    const data = seeded(5 * MiB + 1, 9);
    const parts = [await mp.uploadPart(1, data.subarray(0, 5 * MiB)), await mp.uploadPart(2, data.subarray(5 * MiB))];
    expect(await mp.complete(parts)).toMatchObject({ size: data.length });
    expect([flaky.calls(), slept.length]).toEqual([3, 1]);

    const gone = flakyBucket("uploadPart", () => "throw", "The specified multipart upload does not exist. (10024)");
    const other = recorded();
    await expect(
      createR2Driver(gone.bucket, { retry: other.retry }).resumeMultipart(key, "no-such-id").uploadPart(1, new Uint8Array(1)),
    ).rejects.toBeInstanceOf(MultipartUnknownError);
    expect([gone.calls(), other.slept]).toEqual([1, []]);
  });

  test("an R2 that keeps failing gives StorageUnavailableError after 6 attempts; a streamed body gets one", async () => {
    const down = flakyBucket("put", () => "throw");
    const { retry } = recorded();
    const driver = createR2Driver(down.bucket, { retry });
    const err = await driver.put(`${prefix()}x`, "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ driver: "r2", attempts: 6 });
    expect(down.calls()).toBe(6);

    const data = seeded(100, 3);
    const streamed = await driver.put(`${prefix()}s`, { stream: new Blob([data]).stream(), length: data.length }).catch((e: unknown) => e);
    expect(streamed).toMatchObject({ name: "StorageUnavailableError", attempts: 1 });
  });

  test("a conditional put whose answer was lost is success when R2 holds our bytes, PreconditionFailedError when it holds others", async () => {
    const key = `${prefix()}info`;
    const lost = flakyBucket("put", (call) => (call === 0 ? "lose" : "pass"));
    const driver = createR2Driver(lost.bucket, { retry: recorded().retry });
    expect(await driver.put(key, '{"v":1}', { onlyIf: { doesNotExist: true } })).toMatchObject({ key, size: 7 });
    expect(lost.calls()).toBe(2);

    const other = `${prefix()}info`;
    await env.BUCKET.put(other, '{"v":2}');
    const dropped = flakyBucket("put", (call) => (call === 0 ? "throw" : "pass"), "Network connection lost.");
    await expect(createR2Driver(dropped.bucket, { retry: recorded().retry }).put(other, '{"v":1}', { onlyIf: { doesNotExist: true } })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect(await (await env.BUCKET.get(other))?.text()).toBe('{"v":2}');
  });
});
