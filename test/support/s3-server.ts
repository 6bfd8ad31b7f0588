/**
 * The local S3-compatible server for the S3 driver's tests: s3rver 3.7.1 (npm), on loopback, with
 * a throw-away directory, started and stopped by the test run (vitest globalSetup of the workerd
 * project, see vitest.config.ts), which provides its endpoint to the tests as inject("s3").
 *
 * Why s3rver: it is the only real S3 server installable here (npm or Debian packages; MinIO,
 * Garage, SeaweedFS and moto are in neither, radosgw needs a Ceph cluster). It stores objects in
 * files and serves PutObject, GetObject with ranges, HeadObject, CopyObject, ListObjectsV2,
 * DeleteObjects, CreateMultipartUpload, UploadPart and CompleteMultipartUpload itself.
 *
 * HARNESS EXTENSION. s3rver lacks some operations and checks that the driver uses against real
 * stores (AWS S3, R2, MinIO). They are added here as one koa middleware placed in front of
 * s3rver's router, working on s3rver's own filesystem store, so s3rver still holds every byte:
 * - SigV4 verification (s3rver checks the access key id but not the signature): a wrong secret
 *   is SignatureDoesNotMatch, as on AWS; verified with aws4fetch's signer;
 * - x-amz-content-sha256 payload check on PutObject (XAmzContentSHA256Mismatch);
 * - conditional PutObject: If-None-Match: * and If-Match (412 PreconditionFailed);
 * - AbortMultipartUpload, ListParts and UploadPartCopy;
 * - NoSuchUpload for UploadPart/Complete/Abort/ListParts of an unknown upload id (s3rver would
 *   create it on the fly or fail with InternalError);
 * - CompleteMultipartUpload checks: InvalidPart (unknown part or stale ETag), InvalidPartOrder,
 *   EntityTooSmall (a non-final part under 5 MiB);
 * - 411 MissingContentLength for a PutObject/UploadPart body sent without Content-Length;
 * - ListObjectsV2: continuation tokens (s3rver's use DES, gone from Node 24's OpenSSL 3) and key
 *   order (s3rver lists in file-name order, so "a-b" came before "a");
 * - suffix ranges (`Range: bytes=-N`), which s3rver misreads as `bytes=0-N`, and ranges of an
 *   empty object (S3: 416; s3rver: a 206 promising a byte it never sends).
 * docs/s3.md lists the same split.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PassThrough, type Readable } from "node:stream";
import { AwsV4Signer } from "aws4fetch";
import { XMLParser } from "fast-xml-parser";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    s3: S3ServerInfo;
  }
}

/** What the tests need to reach the server (serialisable: it crosses into workerd). */
export interface S3ServerInfo {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3TestServer extends S3ServerInfo {
  directory: string;
  close(): Promise<void>;
}

/** s3rver's default credentials (its built-in account). */
const ACCESS_KEY_ID = "S3RVER";
const SECRET_ACCESS_KEY = "S3RVER";
const MIN_PART_SIZE = 5 * 1024 * 1024;

// s3rver ships no types; these are the few members used here.
interface FsStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getBucket(bucket: string): Promise<object | null>;
  existsObject(bucket: string, key: string): Promise<boolean>;
  getMetadata(bucket: string, key: string): Promise<{ etag: string; "content-length": number }>;
  listObjects(
    bucket: string,
    options: { prefix: string; delimiter: string; startAfter: string; maxKeys: number },
  ): Promise<{ objects: { key: string; size: number; lastModifiedDate: Date; metadata: { etag: string } }[]; commonPrefixes: string[]; isTruncated: boolean }>;
  putPart(bucket: string, uploadId: string, partNumber: number, content: Readable): Promise<{ md5: string; size: number }>;
}
interface KoaContext {
  method: string;
  path: string;
  originalUrl: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  req: Readable;
  status: number;
  body: unknown;
  get(name: string): string;
  set(name: string, value: string): void;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverApp {
  store: FsStore;
  middleware: Middleware[];
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverApp;
type S3ErrorCtor = new (code: string, message: string, detail?: Record<string, unknown>) => Error & { status: number };

const require = createRequire(import.meta.url);
const S3rver = require("s3rver") as S3rverCtor;
const S3Error = require("s3rver/lib/models/error") as S3ErrorCtor;

function s3Error(code: string, status: number, message: string, detail: Record<string, unknown> = {}): Error {
  const err = new S3Error(code, message, detail);
  err.status = status; // s3rver's table lacks some codes (they would be 500)
  return err;
}

/** Starts s3rver on 127.0.0.1 (a free port unless given) with `bucket` created, plus the harness extension. */
export async function startS3Server(options: { bucket?: string; port?: number } = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? "edge-upload-test";
  const directory = await mkdtemp(join(tmpdir(), "edge-upload-s3-"));
  const app = new S3rver({ port: options.port ?? 0, address: "127.0.0.1", silent: true, directory, configureBuckets: [{ name: bucket }] });
  // In front of s3rver's router (the last middleware), behind its XML encoding and error handling.
  app.middleware.splice(app.middleware.length - 1, 0, harnessExtension(app.store));
  const { port } = await app.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    bucket,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    directory,
    async close() {
      await app.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Vitest globalSetup (workerd project): one server for the run, its endpoint as inject("s3"). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startS3Server();
  const { directory: _directory, close, ...info } = server;
  project.provide("s3", info);
  return close;
}

/**
 * `node test/support/s3-server.ts [port] [bucket]`: the same server for local use (docs/s3.md),
 * until Ctrl-C; the data lives in a temporary directory removed on exit.
 */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await startS3Server({ port: Number(process.argv[2] ?? 9000), bucket: process.argv[3] ?? "edge-upload" });
  console.log(`S3-compatible server (s3rver + harness extension) on ${server.endpoint}, bucket ${server.bucket}`);
  console.log(`S3_ENDPOINT=${server.endpoint} S3_REGION=${server.region} S3_BUCKET=${server.bucket} S3_ACCESS_KEY_ID=${server.accessKeyId} S3_SECRET_ACCESS_KEY=${server.secretAccessKey}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

function harnessExtension(store: FsStore): Middleware {
  const keyLocks = new Map<string, Promise<void>>();
  const xml = new XMLParser({ parseTagValue: false, isArray: (name) => name === "Part" });

  return async function s3rverHarnessExtension(ctx, next) {
    await verifySignature(ctx);
    const [bucket = "", ...rest] = ctx.path.slice(1).split("/").map(decodeURIComponent);
    const key = rest.join("/");
    if (bucket && !key && ctx.method === "GET" && ctx.query["list-type"] === "2") return listObjectsV2(ctx, store, bucket);
    if (!bucket || !key) return next();
    if (!(await store.getBucket(bucket))) throw s3Error("NoSuchBucket", 404, "The specified bucket does not exist", { BucketName: bucket });
    const uploadId = typeof ctx.query.uploadId === "string" ? ctx.query.uploadId : undefined;
    if (ctx.method === "PUT" && !ctx.get("x-amz-copy-source") && !ctx.get("content-length")) {
      // As AWS: a PutObject/UploadPart body must come with its length (no chunked upload).
      throw s3Error("MissingContentLength", 411, "You must provide the Content-Length HTTP header.");
    }

    if (uploadId !== undefined) {
      const dir = join(store.getResourcePath(bucket, undefined, "uploads"), uploadId);
      const owner = await readFile(join(dir, "key"), "utf8").catch(() => undefined);
      if (owner !== key) throw s3Error("NoSuchUpload", 404, "The specified upload does not exist.", { UploadId: uploadId });
      if (ctx.method === "DELETE") {
        await rm(dir, { recursive: true, force: true });
        ctx.status = 204;
        return;
      }
      if (ctx.method === "GET") return listParts(ctx, dir, bucket, key, uploadId);
      if (ctx.method === "PUT" && ctx.get("x-amz-copy-source")) return uploadPartCopy(ctx, store, bucket, uploadId);
      if (ctx.method === "POST") await checkComplete(ctx, dir, xml);
      return next();
    }

    if ((ctx.method === "GET" || ctx.method === "HEAD") && ctx.get("range") && (await store.existsObject(bucket, key))) {
      const size = Number((await store.getMetadata(bucket, key))["content-length"]);
      // As S3: no range of an empty object is satisfiable (s3rver answers a broken 206).
      if (size === 0) throw s3Error("InvalidRange", 416, "The requested range is not satisfiable", { RangeRequested: ctx.get("range"), ActualObjectSize: 0 });
      const suffix = /^bytes=-(\d+)$/.exec(ctx.get("range"));
      if (suffix) ctx.headers.range = `bytes=${Math.max(0, size - Number(suffix[1]))}-`;
    }
    if (ctx.method === "GET" || ctx.method === "HEAD") return next();

    if (ctx.method === "PUT" && Object.keys(ctx.query).length === 0 && !ctx.get("x-amz-copy-source")) {
      // One PUT per key at a time, so a condition checked here still holds when s3rver writes.
      const lockKey = `${bucket}/${key}`;
      const before = keyLocks.get(lockKey) ?? Promise.resolve();
      let release = () => {};
      const mine = new Promise<void>((resolve) => (release = resolve));
      const chained = before.then(() => mine);
      keyLocks.set(lockKey, chained);
      await before;
      try {
        await checkPut(ctx, store, bucket, key);
        await next();
      } finally {
        release();
        if (keyLocks.get(lockKey) === chained) keyLocks.delete(lockKey);
      }
      return;
    }
    return next();
  };
}

/** SigV4 header auth, recomputed with aws4fetch's signer from what was received. */
async function verifySignature(ctx: KoaContext): Promise<void> {
  const auth = ctx.get("authorization");
  if (!auth.startsWith("AWS4-HMAC-SHA256 ")) return; // unsigned or V2: left to s3rver
  const fields = Object.fromEntries(
    auth
      .slice("AWS4-HMAC-SHA256 ".length)
      .split(",")
      .map((f) => f.trim().split("=") as [string, string]),
  );
  const [accessKeyId = "", , region = "", service = ""] = String(fields.Credential ?? "").split("/");
  if (accessKeyId !== ACCESS_KEY_ID) {
    throw s3Error("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.", { AWSAccessKeyId: accessKeyId });
  }
  const headers: Record<string, string> = {};
  for (const name of String(fields.SignedHeaders ?? "").split(";")) if (name !== "host") headers[name] = ctx.get(name);
  const signer = new AwsV4Signer({
    method: ctx.method,
    url: `http://${ctx.get("host")}${ctx.originalUrl}`,
    headers,
    accessKeyId,
    secretAccessKey: SECRET_ACCESS_KEY,
    service,
    region,
    datetime: ctx.get("x-amz-date"),
  });
  if ((await signer.signature()) !== fields.Signature) {
    throw s3Error(
      "SignatureDoesNotMatch",
      403,
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
      { AWSAccessKeyId: accessKeyId },
    );
  }
}

/** Payload hash and conditions of a PutObject, checked before s3rver stores the body. */
async function checkPut(ctx: KoaContext, store: FsStore, bucket: string, key: string): Promise<void> {
  const declared = ctx.get("x-amz-content-sha256");
  if (/^[0-9a-f]{64}$/.test(declared)) {
    const body = await readBody(ctx.req);
    const actual = createHash("sha256").update(body).digest("hex");
    if (actual !== declared) {
      throw s3Error("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.", {
        ClientComputedContentSHA256: declared,
        S3ComputedContentSHA256: actual,
      });
    }
    replayBody(ctx, body);
  }
  const noneMatch = ctx.get("if-none-match");
  const match = ctx.get("if-match");
  if (!noneMatch && !match) return;
  const exists = await store.existsObject(bucket, key);
  if (noneMatch === "*" && exists) {
    throw s3Error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold", { Condition: "If-None-Match" });
  }
  if (match) {
    if (!exists) throw s3Error("NoSuchKey", 404, "The specified key does not exist.", { Key: key });
    const etag = (await store.getMetadata(bucket, key)).etag.replace(/"/g, "");
    if (match.replace(/"/g, "") !== etag) {
      throw s3Error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold", { Condition: "If-Match" });
    }
  }
}

/**
 * ListObjectsV2 on s3rver's store listing. s3rver's own controller enciphers continuation tokens
 * with DES, which Node 24's OpenSSL 3 no longer offers, so every truncated listing fails there
 * with InternalError; the token here is the last key, base64-encoded (opaque to clients).
 */
async function listObjectsV2(ctx: KoaContext, store: FsStore, bucket: string): Promise<void> {
  if (!(await store.getBucket(bucket))) throw s3Error("NoSuchBucket", 404, "The specified bucket does not exist", { BucketName: bucket });
  const one = (name: string) => (typeof ctx.query[name] === "string" ? (ctx.query[name] as string) : undefined);
  const prefix = one("prefix") ?? "";
  const delimiter = one("delimiter") ?? "";
  const maxKeys = Math.max(0, Math.min(Number(one("max-keys") ?? 1000), 1000));
  const token = one("continuation-token");
  const startAfter = token !== undefined ? Buffer.from(token, "base64").toString("utf8") : (one("start-after") ?? "");
  // s3rver walks its directories in file-name order, which is not key order ("a-b" is stored as
  // "a-b._S3rver_object" and so comes before "a"): list everything under the prefix, sort by key
  // as S3 does (byte order), then page.
  const all = await store.listObjects(bucket, { prefix, delimiter, startAfter: "", maxKeys: Number.POSITIVE_INFINITY });
  const after = all.objects.filter((o) => o.key > startAfter).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const result = { objects: after.slice(0, maxKeys), commonPrefixes: all.commonPrefixes, isTruncated: after.length > maxKeys };
  const last = result.objects.at(-1)?.key;
  ctx.body = {
    ListBucketResult: {
      "@": { xmlns: "http://s3.amazonaws.com/doc/2006-03-01/" },
      Name: bucket,
      Prefix: prefix,
      ...(token !== undefined ? { ContinuationToken: token } : {}),
      ...(result.isTruncated && last !== undefined ? { NextContinuationToken: Buffer.from(last, "utf8").toString("base64") } : {}),
      KeyCount: result.objects.length,
      MaxKeys: maxKeys,
      IsTruncated: result.isTruncated,
      Contents: result.objects.map((o) => ({ Key: o.key, LastModified: o.lastModifiedDate.toISOString(), ETag: o.metadata.etag, Size: o.size })),
      CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: p })),
    },
  };
}

interface StoredPart {
  number: number;
  etag: string;
  size: number;
  modified: Date;
}

async function partsOf(dir: string): Promise<StoredPart[]> {
  const names = (await readdir(dir)).filter((n) => /^\d+$/.test(n));
  const parts = await Promise.all(
    names.map(async (n) => {
      const [info, md5] = await Promise.all([stat(join(dir, n)), readFile(join(dir, `${n}.md5`), "utf8")]);
      return { number: Number(n), etag: md5.trim(), size: info.size, modified: info.mtime };
    }),
  );
  return parts.sort((a, b) => a.number - b.number);
}

async function listParts(ctx: KoaContext, dir: string, bucket: string, key: string, uploadId: string): Promise<void> {
  const marker = Number(ctx.query["part-number-marker"] ?? 0);
  const max = Math.min(Number(ctx.query["max-parts"] ?? 1000), 1000);
  const after = (await partsOf(dir)).filter((p) => p.number > marker);
  const page = after.slice(0, max);
  const truncated = after.length > page.length;
  ctx.body = {
    ListPartsResult: {
      "@": { xmlns: "http://s3.amazonaws.com/doc/2006-03-01/" },
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      PartNumberMarker: marker,
      ...(truncated ? { NextPartNumberMarker: page.at(-1)?.number } : {}),
      MaxParts: max,
      IsTruncated: truncated,
      Part: page.map((p) => ({ PartNumber: p.number, LastModified: p.modified.toISOString(), ETag: JSON.stringify(p.etag), Size: p.size })),
    },
  };
}

async function uploadPartCopy(ctx: KoaContext, store: FsStore, bucket: string, uploadId: string): Promise<void> {
  const source = decodeURIComponent(ctx.get("x-amz-copy-source").split("?")[0] ?? "").replace(/^\//, "");
  const [srcBucket = "", ...srcRest] = source.split("/");
  const srcKey = srcRest.join("/");
  if (!(await store.getBucket(srcBucket))) throw s3Error("NoSuchBucket", 404, "The specified bucket does not exist", { BucketName: srcBucket });
  if (!(await store.existsObject(srcBucket, srcKey))) throw s3Error("NoSuchKey", 404, "The specified key does not exist.", { Key: srcKey });
  const size = Number((await store.getMetadata(srcBucket, srcKey))["content-length"]);
  const rangeHeader = ctx.get("x-amz-copy-source-range");
  let start = 0;
  let end = size - 1;
  if (rangeHeader) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(rangeHeader);
    if (!m || Number(m[1]) > Number(m[2]) || Number(m[2]) >= size) {
      throw s3Error("InvalidArgument", 400, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy", {
        ArgumentName: "x-amz-copy-source-range",
        ArgumentValue: rangeHeader,
      });
    }
    start = Number(m[1]);
    end = Number(m[2]);
  }
  const partNumber = Number(ctx.query.partNumber);
  const content = size === 0 ? emptyStream() : createReadStream(store.getResourcePath(srcBucket, srcKey, "object"), { start, end });
  const { md5 } = await store.putPart(bucket, uploadId, partNumber, content);
  ctx.body = { CopyPartResult: { LastModified: new Date().toISOString(), ETag: JSON.stringify(md5) } };
}

/** AWS's CompleteMultipartUpload checks, before s3rver assembles the parts. */
async function checkComplete(ctx: KoaContext, dir: string, xml: XMLParser): Promise<void> {
  const body = await readBody(ctx.req);
  replayBody(ctx, body);
  const parsed = xml.parse(body.toString("utf8")) as { CompleteMultipartUpload?: { Part?: { PartNumber: string; ETag: string }[] } };
  const asked = parsed.CompleteMultipartUpload?.Part ?? [];
  const stored = new Map((await partsOf(dir)).map((p) => [p.number, p]));
  let previous = 0;
  asked.forEach((p, i) => {
    const number = Number(p.PartNumber);
    if (number <= previous) throw s3Error("InvalidPartOrder", 400, "The list of parts was not in ascending order. The parts list must be specified in order by part number.");
    previous = number;
    const part = stored.get(number);
    if (!part || part.etag !== String(p.ETag).replace(/"/g, "")) {
      throw s3Error("InvalidPart", 400, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.", {
        PartNumber: number,
        ETag: p.ETag,
      });
    }
    if (i < asked.length - 1 && part.size < MIN_PART_SIZE) {
      throw s3Error("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.", {
        PartNumber: number,
        ProposedSize: part.size,
        MinSizeAllowed: MIN_PART_SIZE,
      });
    }
  });
}

async function readBody(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Hands s3rver a body already read by the extension (s3rver reads `ctx.req`). */
function replayBody(ctx: KoaContext, body: Buffer): void {
  const stream = new PassThrough();
  stream.end(body);
  ctx.req = stream;
}

function emptyStream(): Readable {
  const stream = new PassThrough();
  stream.end();
  return stream;
}
