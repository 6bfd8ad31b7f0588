/**
 * The S3 driver against a flaky store: the run's real S3 server (Ceph RGW) behind a
 * `fetch` that injects the faults a store or the network between produces — throttling with
 * Retry-After, requests that never answer, answers lost after the store acted, copies answered
 * 200 with an `<Error>` body. Sleeps are recorded, not waited.
 */
import { describe, expect, test } from "vitest";
import { readAll } from "../../edge/storage/body.ts";
import { sameBytes, seeded } from "../../edge/storage/conformance.ts";
import { MultipartUnknownError, PreconditionFailedError, StorageUnavailableError } from "../../edge/storage/driver.ts";
import type { RetryPolicy } from "../../edge/storage/retry.ts";
import type { S3DriverOptions } from "../../edge/storage/s3.ts";
import { multipartUploadsOf, s3 } from "./s3-support.ts";

const MiB = 1024 * 1024;
let n = 0;
const prefix = () => `s3-retry/t${++n}-${Date.now().toString(36)}/`;

/** What the fault rule decides for one request. */
type Fault =
  | { kind: "pass" }
  /** Answer this instead of asking the store. */
  | { kind: "answer"; response: Response }
  /** Never answer (a hung store or connection). */
  | { kind: "hang" }
  /** Fail as a dropped connection would, without reaching the store. */
  | { kind: "drop" }
  /** Let the store carry the request out, then lose its answer. */
  | { kind: "lose" };

interface Seen {
  method: string;
  url: URL;
  copy: boolean;
}

/** A fetch to the real store that applies `rule` to each request; `seen` lists them all. */
function flaky(rule: (request: Seen, index: number) => Fault) {
  const seen: Seen[] = [];
  const fetchFn = async (request: Request): Promise<Response> => {
    const entry = { method: request.method, url: new URL(request.url), copy: request.headers.has("x-amz-copy-source") };
    seen.push(entry);
    const fault = rule(entry, seen.length - 1);
    switch (fault.kind) {
      case "answer":
        return fault.response;
      case "hang":
        return new Promise<Response>(() => undefined);
      case "drop":
        throw new TypeError("Network connection lost.");
      case "lose": {
        const response = await fetch(request);
        await response.arrayBuffer();
        throw new TypeError("Network connection lost.");
      }
      default:
        return fetch(request);
    }
  };
  return { seen, fetch: fetchFn };
}

/** Retry options whose sleeps are recorded (random fixed at 0.5), so nothing waits. */
function recorded(overrides: Partial<RetryPolicy> = {}) {
  const slept: number[] = [];
  const retry: Partial<RetryPolicy> = { random: () => 0.5, sleep: async (ms) => void slept.push(ms), ...overrides };
  return { slept, retry };
}

function driverWith(fetchFn: (r: Request) => Promise<Response>, extra: Partial<S3DriverOptions> = {}) {
  const { slept, retry } = recorded();
  return { slept, driver: s3({ fetch: fetchFn, retry, ...extra }) };
}

function s3ErrorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>test</RequestId></Error>`, {
    status,
    headers: { "content-type": "application/xml", ...headers },
  });
}

const slowDown = () => s3ErrorResponse(503, "SlowDown", "Please reduce your request rate.", { "retry-after": "2" });

describe("s3 driver: throttling and 5xx", () => {
  test("503 SlowDown with Retry-After is retried after at least that long, with jitter, until the store takes it", async () => {
    const puts = flaky((r, i) => (r.method === "PUT" && i < 4 ? { kind: "answer", response: slowDown() } : { kind: "pass" }));
    const { driver, slept } = driverWith(puts.fetch);
    const key = `${prefix()}throttled`;
    const info = await driver.put(key, "after four refusals");
    expect(info.size).toBe(19);
    expect(puts.seen.filter((r) => r.method === "PUT")).toHaveLength(5);
    // Retry-After: 2 is a floor under every wait.
    expect(slept).toHaveLength(4);
    expect(slept.every((ms) => ms >= 2000)).toBe(true);
    expect(new TextDecoder().decode(await readAll((await driver.get(key)).body))).toBe("after four refusals");
  });

  test("500 InternalError is retried with jittered exponential waits (half of each doubling window with random 0.5); a definite error is not", async () => {
    const gets = flaky((r, i) =>
      i < 3 ? { kind: "answer", response: s3ErrorResponse(500, "InternalError", "We encountered an internal error. Please try again.") } : { kind: "pass" },
    );
    const { driver, slept } = driverWith(gets.fetch);
    const key = `${prefix()}x`;
    await s3().put(key, "x");
    expect((await driver.stat(key)).size).toBe(1);
    expect(slept).toEqual([100, 200, 400]);
    await expect(driver.get(`${key}-missing`)).rejects.toMatchObject({ name: "PathNotFoundError" });
    expect([gets.seen.length, slept.length]).toEqual([5, 3]);
  });

  test("a store that stays throttled fails with StorageUnavailableError after 6 attempts, carrying its Retry-After", async () => {
    const always = flaky(() => ({ kind: "answer", response: slowDown() }));
    const { driver } = driverWith(always.fetch);
    const err = await driver.put(`${prefix()}never`, "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ name: "StorageUnavailableError", driver: "s3", attempts: 6, retryAfterSeconds: 2 });
    expect((err as Error).cause).toMatchObject({ code: "SlowDown", status: 503 });
    expect(always.seen).toHaveLength(6);
  });
});

describe("s3 driver: per-request timeout", () => {
  test("requests that never answer are abandoned at the timeout and retried", async () => {
    const hangs = flaky((r, i) => (i < 2 ? { kind: "hang" } : { kind: "pass" }));
    // Long enough for the real store's answer to the third attempt even on a loaded machine.
    const { driver, slept } = driverWith(hangs.fetch, { requestTimeoutMs: 3000 });
    const key = `${prefix()}slow`;
    await driver.put(key, "eventually");
    expect([hangs.seen.length, slept.length]).toEqual([3, 2]);
    expect((await s3().stat(key)).size).toBe(10);
  });

  test("a store that never answers fails with StorageUnavailableError, not a caller held forever", async () => {
    const hangs = flaky(() => ({ kind: "hang" }));
    const { driver } = driverWith(hangs.fetch, { requestTimeoutMs: 50 });
    const err = await driver.list(prefix()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ attempts: 6 });
    expect((err as Error).cause).toMatchObject({ code: "Timeout" });
  });

  test("a streamed body cannot be sent again: one attempt, then StorageUnavailableError", async () => {
    const hangs = flaky(() => ({ kind: "hang" }));
    const { driver } = driverWith(hangs.fetch, { requestTimeoutMs: 50 });
    const data = seeded(1000, 7);
    const err = await driver.put(`${prefix()}streamed`, { stream: new Blob([data]).stream(), length: data.length }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect([(err as StorageUnavailableError).attempts, hangs.seen.length]).toEqual([1, 1]);
  });
});

describe("s3 driver: conditional writes whose answer was lost", () => {
  test("a 412 on the retry of an If-None-Match PUT that landed is success; PreconditionFailedError when the store holds other bytes", async () => {
    // Ours landed, the answer was lost: the retry's 412 is our own write.
    const lost = flaky((r, i) => (r.method === "PUT" && i === 0 ? { kind: "lose" } : { kind: "pass" }));
    const key = `${prefix()}info`;
    const info = await driverWith(lost.fetch).driver.put(key, '{"v":1}', { onlyIf: { doesNotExist: true } });
    expect(info).toMatchObject({ key, size: 7 });
    expect(lost.seen.map((r) => r.method)).toEqual(["PUT", "PUT", "HEAD"]);

    // Another writer got there while our first attempt failed: its bytes stay, ours are refused.
    const other = `${prefix()}info`;
    const raced = flaky((r, i) => (r.method === "PUT" && i === 0 ? { kind: "drop" } : { kind: "pass" }));
    const driver = driverWith(async (request) => {
      if (raced.seen.length === 0) await s3().put(other, '{"v":2}');
      return raced.fetch(request);
    }).driver;
    await expect(driver.put(other, '{"v":1}', { onlyIf: { doesNotExist: true } })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(new TextDecoder().decode(await readAll((await s3().get(other)).body))).toBe('{"v":2}');
  });

  test("where the ETag is no MD5 (SSE-KMS), the stored bytes are read back and compared", async () => {
    const key = `${prefix()}kms`;
    let puts = 0;
    const kms = async (request: Request): Promise<Response> => {
      if (request.method === "PUT" && puts++ === 0) {
        await (await fetch(request)).arrayBuffer();
        throw new TypeError("Network connection lost.");
      }
      const response = await fetch(request);
      if (request.method !== "HEAD") return response;
      const headers = new Headers(response.headers);
      headers.set("etag", '"not-an-md5"');
      return new Response(null, { status: response.status, headers });
    };
    const { driver } = driverWith(kms);
    expect(await driver.put(key, "ours", { onlyIf: { doesNotExist: true } })).toMatchObject({ key, size: 4 });
    // Same size, other bytes: refused after the read-back.
    const other = `${prefix()}kms`;
    await s3().put(other, "them");
    puts = 1;
    const dropFirst = async (request: Request): Promise<Response> => {
      if (request.method === "PUT" && puts++ === 1) throw new TypeError("Network connection lost.");
      return kms(request);
    };
    await expect(driverWith(dropFirst).driver.put(other, "ours", { onlyIf: { doesNotExist: true } })).rejects.toBeInstanceOf(PreconditionFailedError);
  });
});

describe("s3 driver: idempotent CreateMultipartUpload", () => {
  test("a create whose answer was lost leaves no orphan: the part-less upload it made is aborted, an older upload with parts is kept", async () => {
    const key = `${prefix()}mp`;
    let creates = 0;
    // The store's own ListMultipartUploads (RGW has it) tells the driver what the lost answer created.
    const store = flaky((r) => (r.method === "POST" && r.url.searchParams.has("uploads") && creates++ === 1 ? { kind: "lose" } : { kind: "pass" }));
    const { driver } = driverWith(store.fetch);
    // Someone's upload of the same key, with a part: not an orphan.
    const older = await driver.createMultipart(key);
    await older.uploadPart(1, seeded(5 * MiB, 1));

    const mp = await driver.createMultipart(key);
    expect(store.seen.filter((r) => r.method === "POST").length).toBe(3);
    const orphans = store.seen.filter((r) => r.method === "DELETE").map((r) => r.url.searchParams.get("uploadId"));
    expect(orphans).toHaveLength(1);
    expect(orphans[0]).not.toBe(mp.uploadId);
    expect(orphans[0]).not.toBe(older.uploadId);
    // The store now holds exactly ours and the older one; the orphan is gone.
    expect((await multipartUploadsOf(key)).sort()).toEqual([older.uploadId, mp.uploadId].sort());
    await expect(
      s3()
        .resumeMultipart(key, orphans[0] ?? "")
        .uploadPart(1, new Uint8Array(10)),
    ).rejects.toBeInstanceOf(MultipartUnknownError);
    const data = seeded(5 * MiB + 3, 2);
    const parts = [await mp.uploadPart(1, data.subarray(0, 5 * MiB)), await mp.uploadPart(2, data.subarray(5 * MiB))];
    expect(await mp.complete(parts)).toMatchObject({ size: data.length });
    expect(sameBytes(await readAll((await driver.get(key)).body), data)).toBe(true);
    await older.abort();
  });
});

describe("s3 driver: 200 answers carrying an <Error>", () => {
  const internal = () => s3ErrorResponse(200, "InternalError", "We encountered an internal error. Please try again.");

  test("CopyObject answered 200 with an <Error> body is retried when the code is transient, not when it is definite", async () => {
    const p = prefix();
    await s3().put(`${p}from`, "copied bytes");
    const copies = flaky((r) => (r.copy && copies.seen.filter((s) => s.copy).length === 1 ? { kind: "answer", response: internal() } : { kind: "pass" }));
    const { driver, slept } = driverWith(copies.fetch);
    expect(await driver.copy?.(`${p}from`, `${p}to`)).toMatchObject({ key: `${p}to`, size: 12 });
    expect([copies.seen.filter((r) => r.copy).length, slept.length]).toEqual([2, 1]);
    expect(new TextDecoder().decode(await readAll((await s3().get(`${p}to`)).body))).toBe("copied bytes");

    const denied = flaky((r) => (r.copy ? { kind: "answer", response: s3ErrorResponse(200, "AccessDenied", "Access Denied") } : { kind: "pass" }));
    const refused = driverWith(denied.fetch);
    await expect(refused.driver.copy?.(`${p}from`, `${p}to2`)).rejects.toMatchObject({ name: "S3CredentialsError" });
    expect([denied.seen.filter((r) => r.copy).length, refused.slept]).toEqual([1, []]);
  });

  test("UploadPartCopy and CompleteMultipartUpload answered 200 with an <Error> body are retried", async () => {
    const p = prefix();
    const data = seeded(5 * MiB + 11, 3);
    await s3().put(`${p}big`, data);
    let partCopyErrors = 0;
    let completeErrors = 0;
    const faults = flaky((r) => {
      if (r.copy && partCopyErrors++ === 0) return { kind: "answer", response: internal() };
      if (r.method === "POST" && r.url.searchParams.has("uploadId") && completeErrors++ === 0) return { kind: "answer", response: internal() };
      return { kind: "pass" };
    });
    const { driver } = driverWith(faults.fetch, { multipartCopyThreshold: 5 * MiB, copyPartSize: 5 * MiB });
    expect(await driver.copy?.(`${p}big`, `${p}copy`)).toMatchObject({ size: data.length });
    expect([partCopyErrors, completeErrors]).toEqual([3, 2]);
    expect(sameBytes(await readAll((await s3().get(`${p}copy`)).body), data)).toBe(true);
  });
});
