import { describe, expect, test } from "vitest";
import { readAll } from "../../edge/storage/body.ts";
import { seeded, sameBytes } from "../../edge/storage/conformance.ts";
import { PathNotFoundError, PreconditionFailedError } from "../../edge/storage/driver.ts";
import { S3BucketNotFoundError, S3CredentialsError, S3ResponseError } from "../../edge/storage/s3.ts";
import { StorageConfigError, storageChoice } from "../../edge/storage/s3-config.ts";
import { countingFetch, s3, s3Server } from "./s3-support.ts";

const MiB = 1024 * 1024;
let n = 0;
const prefix = () => `s3-tests/t${++n}-${Date.now().toString(36)}/`;

describe("s3 driver: clear errors for credentials and buckets", () => {
  test("a wrong secret key is an S3CredentialsError (SignatureDoesNotMatch, 403) that says what to check", async () => {
    const driver = s3({ secretAccessKey: "not-the-secret" });
    const err = await driver.put(`${prefix()}x`, "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3CredentialsError);
    expect(err).toMatchObject({ code: "SignatureDoesNotMatch", status: 403, driver: "s3" });
    expect((err as Error).message).toMatch(/refused the credentials .*S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY/);
    expect((err as Error).cause).toBeInstanceOf(S3ResponseError);
    // Reads are refused the same way.
    await expect(driver.list(prefix())).rejects.toBeInstanceOf(S3CredentialsError);
  });

  test("an unknown access key id is an S3CredentialsError (InvalidAccessKeyId)", async () => {
    const err = await s3({ accessKeyId: "AKIDNOTKNOWN" })
      .get(`${prefix()}x`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3CredentialsError);
    expect(err).toMatchObject({ code: "InvalidAccessKeyId", status: 403 });
  });

  test("a missing bucket is an S3BucketNotFoundError naming the bucket, for writes, reads and listings", async () => {
    const driver = s3({ bucket: "no-such-bucket" });
    const put = await driver.put(`${prefix()}x`, "x").catch((e: unknown) => e);
    expect(put).toBeInstanceOf(S3BucketNotFoundError);
    expect(put).toMatchObject({ code: "NoSuchBucket", status: 404, bucket: "no-such-bucket" });
    expect((put as Error).message).toMatch(/bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:\d+/);
    await expect(driver.get(`${prefix()}x`)).rejects.toBeInstanceOf(S3BucketNotFoundError);
    await expect(driver.list(prefix())).rejects.toBeInstanceOf(S3BucketNotFoundError);
    await expect(driver.createMultipart(`${prefix()}x`)).rejects.toBeInstanceOf(S3BucketNotFoundError);
  });

  test("mapped errors keep the store's code and status in their cause", async () => {
    const err = await s3()
      .get(`${prefix()}missing`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PathNotFoundError);
    expect((err as Error).cause).toMatchObject({ name: "S3ResponseError", operation: "GetObject", code: "NoSuchKey", status: 404 });
    // If-Match on a missing key: S3 answers 404, the interface says the condition failed.
    await expect(s3().put(`${prefix()}cas`, "x", { onlyIf: { etagMatches: "abc" } })).rejects.toBeInstanceOf(PreconditionFailedError);
  });
});

describe("s3 driver: server-side copy", () => {
  test("copy up to the threshold is one CopyObject: no object bytes pass through the driver", async () => {
    const counter = countingFetch();
    const driver = s3({ fetch: counter.fetch });
    const p = prefix();
    const data = seeded(3 * MiB + 5, 41);
    await driver.put(`${p}from`, data);
    counter.reset();
    const info = await driver.copy?.(`${p}from`, `${p}to`);
    expect(info).toMatchObject({ key: `${p}to`, size: data.length });
    // HEAD of the source, then the copy; only small XML comes back.
    expect(counter.requests.map((r) => [r.method, r.copySource])).toEqual([
      ["HEAD", false],
      ["PUT", true],
    ]);
    expect(counter.sent).toBe(0);
    expect(counter.received).toBeLessThan(1024);
    expect(sameBytes(await readAll((await driver.get(`${p}to`)).body), data)).toBe(true);
  });

  test("copy above the threshold is a multipart upload of UploadPartCopy ranges (as for blobs over 5 GiB)", async () => {
    const counter = countingFetch();
    // A 5 MiB threshold and part size stand in for CopyObject's 5 GiB limit.
    const driver = s3({ fetch: counter.fetch, multipartCopyThreshold: 5 * MiB, copyPartSize: 5 * MiB });
    const p = prefix();
    const data = seeded(11 * MiB + 7, 42);
    await driver.put(`${p}big`, data);
    counter.reset();
    const info = await driver.copy?.(`${p}big`, `${p}big-copy`);
    expect(info).toMatchObject({ key: `${p}big-copy`, size: data.length });
    const partCopies = counter.requests.filter((r) => r.method === "PUT" && r.copySource);
    expect(partCopies.map((r) => new URL(r.url).searchParams.get("partNumber"))).toEqual(["1", "2", "3"]);
    expect(counter.sent).toBeLessThan(1024); // the CompleteMultipartUpload XML
    expect(counter.received).toBeLessThan(4096);
    expect(sameBytes(await readAll((await driver.get(`${p}big-copy`)).body), data)).toBe(true);
    // Nothing is left behind under the destination but the object.
    expect((await driver.list(p)).keys).toEqual([`${p}big`, `${p}big-copy`]);
  });
});

describe("s3 driver: requests", () => {
  test("delete sends DeleteObjects in batches of 1000 keys", async () => {
    const counter = countingFetch();
    const driver = s3({ fetch: counter.fetch });
    const p = prefix();
    await driver.put(`${p}k0001`, "a");
    await driver.put(`${p}k1100`, "b");
    counter.reset();
    const keys = Array.from({ length: 1200 }, (_, i) => `${p}k${String(i).padStart(4, "0")}`);
    await driver.delete(...keys);
    expect(counter.requests.map((r) => [r.method, new URL(r.url).search])).toEqual([
      ["POST", "?delete"],
      ["POST", "?delete"],
    ]);
    expect((await driver.list(p)).keys).toEqual([]);
  });

  test("delete of one key is one body-less DeleteObject (the writer's per-part clean-up); an absent key is not an error", async () => {
    const counter = countingFetch();
    const driver = s3({ fetch: counter.fetch });
    const p = prefix();
    await driver.put(`${p}one`, "a");
    counter.reset();
    await driver.delete(`${p}one`);
    await driver.delete(`${p}never-there`);
    expect(counter.requests.map((r) => [r.method, new URL(r.url).search, r.sent])).toEqual([
      ["DELETE", "", 0],
      ["DELETE", "", 0],
    ]);
    await expect(driver.stat(`${p}one`)).rejects.toBeInstanceOf(PathNotFoundError);
  });

  test("offset 0 of an empty object reads as empty (S3 itself answers 416 to any range of it)", async () => {
    const driver = s3();
    const key = `${prefix()}empty`;
    await driver.put(key, new Uint8Array(0));
    const got = await driver.get(key, { range: { offset: 0 } });
    expect([got.size, got.range, (await readAll(got.body)).length]).toEqual([0, { offset: 0, length: 0 }, 0]);
  });

  test("aborting against a missing bucket is an error, not a silently ignored NoSuchUpload", async () => {
    await expect(s3({ bucket: "no-such-bucket" }).resumeMultipart(`${prefix()}x`, "id").abort()).rejects.toBeInstanceOf(S3BucketNotFoundError);
  });

  test("a resumed multipart upload completes from the parts the store lists (ListParts)", async () => {
    const driver = s3();
    const p = prefix();
    const data = seeded(5 * MiB + 10, 43);
    const mp = await driver.createMultipart(`${p}mp`);
    const first = await mp.uploadPart(1, data.subarray(0, 5 * MiB));
    const again = driver.resumeMultipart(`${p}mp`, mp.uploadId);
    const last = await again.uploadPart(2, { stream: new Blob([data.subarray(5 * MiB)]).stream(), length: 10 });
    expect(await again.complete([first, last])).toMatchObject({ key: `${p}mp`, size: data.length });
    expect(sameBytes(await readAll((await driver.get(`${p}mp`)).body), data)).toBe(true);
  });
});

describe("storage configuration (STORAGE, S3_*)", () => {
  const base = {
    STORAGE: "s3",
    S3_ENDPOINT: "https://s3.eu-west-1.amazonaws.com",
    S3_REGION: "eu-west-1",
    S3_BUCKET: "uploads",
    S3_ACCESS_KEY_ID: "AKID",
    S3_SECRET_ACCESS_KEY: "secret",
  };

  test("R2 binding by default; S3 with its options", () => {
    expect(storageChoice({})).toEqual({ kind: "r2" });
    expect(storageChoice({ STORAGE: "R2" })).toEqual({ kind: "r2" });
    expect(storageChoice(base)).toEqual({
      kind: "s3",
      options: { endpoint: "https://s3.eu-west-1.amazonaws.com", region: "eu-west-1", bucket: "uploads", accessKeyId: "AKID", secretAccessKey: "secret" },
    });
    const r2 = storageChoice({ ...base, S3_ENDPOINT: "https://0123abcd.r2.cloudflarestorage.com", S3_REGION: "", S3_FORCE_PATH_STYLE: "true" });
    expect(r2).toMatchObject({ kind: "s3", options: { region: "auto", forcePathStyle: true } });
    const tuned = storageChoice({ ...base, S3_REQUEST_TIMEOUT_SECONDS: "120", S3_MAX_ATTEMPTS: "10" });
    expect(tuned).toMatchObject({ kind: "s3", options: { requestTimeoutMs: 120_000, retry: { attempts: 10 } } });
  });

  test.each([
    [{ STORAGE: "gcs" }, "STORAGE"],
    [{ ...base, S3_ENDPOINT: "" }, "S3_ENDPOINT"],
    [{ ...base, S3_ENDPOINT: "s3.amazonaws.com" }, "S3_ENDPOINT"],
    [{ ...base, S3_ENDPOINT: "https://s3.amazonaws.com/uploads" }, "S3_ENDPOINT"],
    [{ ...base, S3_REGION: "" }, "S3_REGION"],
    [{ ...base, S3_BUCKET: "" }, "S3_BUCKET"],
    [{ ...base, S3_BUCKET: "s3://uploads" }, "S3_BUCKET"],
    [{ ...base, S3_ACCESS_KEY_ID: "" }, "S3_ACCESS_KEY_ID"],
    [{ ...base, S3_SECRET_ACCESS_KEY: " " }, "S3_SECRET_ACCESS_KEY"],
    [{ ...base, S3_FORCE_PATH_STYLE: "yes" }, "S3_FORCE_PATH_STYLE"],
    [{ ...base, S3_REQUEST_TIMEOUT_SECONDS: "0" }, "S3_REQUEST_TIMEOUT_SECONDS"],
    [{ ...base, S3_REQUEST_TIMEOUT_SECONDS: "30s" }, "S3_REQUEST_TIMEOUT_SECONDS"],
    [{ ...base, S3_MAX_ATTEMPTS: "-1" }, "S3_MAX_ATTEMPTS"],
  ])("%o is refused naming %s", (vars, variable) => {
    const err = (() => {
      try {
        storageChoice(vars);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(StorageConfigError);
    expect(err).toMatchObject({ variable });
    expect((err as Error).message).toContain(variable);
  });

  test("the configured test server works through storageChoice", async () => {
    const { endpoint, region, bucket, accessKeyId, secretAccessKey } = s3Server();
    const choice = storageChoice({
      STORAGE: "s3",
      S3_ENDPOINT: endpoint,
      S3_REGION: region,
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: accessKeyId,
      S3_SECRET_ACCESS_KEY: secretAccessKey,
    });
    expect(choice.kind).toBe("s3");
    if (choice.kind !== "s3") return;
    const { createS3Driver } = await import("../../edge/storage/s3.ts");
    const driver = createS3Driver(choice.options);
    const key = `${prefix()}cfg`;
    await driver.put(key, "configured");
    expect((await driver.stat(key)).size).toBe(10);
  });
});
