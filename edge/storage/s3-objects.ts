/**
 * The S3 driver's object operations (./s3.ts): GetObject, PutObject (conditional, with the body's
 * SHA-256 as the signed payload hash), HeadObject, ListObjectsV2, DeleteObject(s). Each is a
 * function of the connection (./s3-request.ts), so the driver is their assembly.
 */
import {
  InvalidRangeError,
  PathNotFoundError,
  PreconditionFailedError,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListResult,
  type ObjectInfo,
  type PutBody,
  type PutOptions,
} from "./driver.ts";
import { S3RequestError, S3ResponseError } from "./s3-errors.ts";
import { dateOf, infoFrom, NAME, noAttempts, payload, unquote, type Payload, type S3Call, type S3Connection } from "./s3-request.ts";
import { buildXml, child, children, text } from "./s3-xml.ts";
import { isSameBody, md5 } from "./workerd-body.ts";

/** DeleteObjects takes at most this many keys. */
const DELETE_BATCH = 1000;

/** HeadObject: the interface's `stat`. */
export async function headObject(s3: S3Connection, key: string): Promise<ObjectInfo> {
  const response = await s3.request({ operation: "HeadObject", method: "HEAD", url: s3.url(key), context: { path: key } });
  return infoFrom(key, response.headers, Number(response.headers.get("content-length") ?? 0));
}

/** GetObject, whole or a range. */
export async function getObject(s3: S3Connection, key: string, opts: { range?: ByteRange } = {}): Promise<GetResult> {
  const range = opts.range;
  let response: Response;
  try {
    response = await s3.request({
      operation: "GetObject",
      method: "GET",
      url: s3.url(key),
      context: range ? { path: key, range } : { path: key },
      ...(range ? { headers: { range: rangeHeader(range) } } : {}),
    });
  } catch (err) {
    // S3 refuses any range of an empty object; the interface (as R2) gives offset 0 of it.
    if (err instanceof InvalidRangeError && range && "offset" in range && range.offset === 0) {
      const info = await headObject(s3, key);
      if (info.size === 0) return { ...info, body: new ReadableStream<Uint8Array>({ start: (c) => c.close() }), range: { offset: 0, length: 0 } };
    }
    throw err;
  }
  const body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  if (response.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
    if (!m) throw new S3RequestError(key, NAME, new S3ResponseError("GetObject", "MalformedResponse", 206, undefined, "206 without a Content-Range"));
    const offset = Number(m[1]);
    const length = Number(m[2]) - offset + 1;
    const size = m[3] === "*" ? (await headObject(s3, key)).size : Number(m[3]);
    return { ...infoFrom(key, response.headers, size), body, range: { offset, length } };
  }
  const size = Number(response.headers.get("content-length") ?? 0);
  const result: GetResult = { ...infoFrom(key, response.headers, size), body };
  // A store may answer a range covering the whole object with 200.
  if (range) result.range = { offset: 0, length: size };
  return result;
}

/** PutObject; a conditional one learns whether the store wants If-Match quoted. */
export async function putObject(s3: S3Connection, key: string, body: PutBody, opts: PutOptions = {}): Promise<ObjectInfo> {
  const headers: Record<string, string> = {};
  if (opts.sha256 !== undefined) headers["x-amz-content-sha256"] = opts.sha256.toLowerCase();
  if (opts.onlyIf?.doesNotExist) headers["if-none-match"] = "*";
  const expected = opts.onlyIf?.etagMatches;
  const data = payload(body);
  const put = (quoted: boolean) =>
    putOnce(s3, key, data, expected === undefined ? headers : { ...headers, "if-match": quoted ? `"${expected}"` : expected }, expected !== undefined);
  try {
    return await put(s3.ifMatchQuoted);
  } catch (err) {
    // Ceph RGW 16 compares If-Match with the bare ETag, so the quoted form RFC 9110 and AWS
    // use never matches there. A 412 while the object still has the expected ETag is that:
    // the same compare-and-swap again, unquoted, and unquoted from then on for this store.
    if (!(err instanceof PreconditionFailedError) || expected === undefined || !s3.ifMatchQuoted || !("bytes" in data)) throw err;
    const current = await headObject(s3, key).catch(() => undefined);
    if (current?.etag !== expected) throw err;
    s3.ifMatchQuoted = false;
    return put(false);
  }
}

async function putOnce(s3: S3Connection, key: string, data: Payload, headers: Record<string, string>, conditional: boolean): Promise<ObjectInfo> {
  const seen = noAttempts();
  let response: Response;
  try {
    const context = conditional ? { path: key, conditional: true } : { path: key };
    response = await s3.request({ operation: "PutObject", method: "PUT", url: s3.url(key), context, headers, body: data }, seen);
  } catch (err) {
    // A conditional write whose earlier attempt may have landed: the retry's 412 is then our
    // own write answering, which is success when the store holds exactly what we sent.
    if (err instanceof PreconditionFailedError && seen.effectUnknown && "bytes" in data) {
      const info = await holds(s3, key, data.bytes);
      if (info) return info;
    }
    throw err;
  }
  await response.body?.cancel();
  return { key, size: data.length, etag: unquote(response.headers.get("etag") ?? ""), modified: dateOf(response.headers) };
}

/** Whether `bytes` is what the store holds at `key` (./workerd-body.ts isSameBody). */
async function holds(s3: S3Connection, key: string, bytes: Uint8Array): Promise<ObjectInfo | undefined> {
  let info: ObjectInfo;
  try {
    info = await headObject(s3, key);
  } catch (err) {
    if (err instanceof PathNotFoundError) return undefined;
    throw err;
  }
  const readBack = async () => new Uint8Array(await new Response((await getObject(s3, key)).body).arrayBuffer());
  return (await isSameBody(info, readBack, bytes)) ? info : undefined;
}

/** ListObjectsV2, one page of at most 1000 keys. */
export async function listObjects(s3: S3Connection, prefix: string, opts: ListOptions = {}): Promise<ListResult> {
  const limit = Math.max(1, Math.min(opts.limit ?? 1000, 1000));
  const { xml } = await s3.requestXml({
    operation: "ListObjectsV2",
    method: "GET",
    url: s3.url(undefined, { "list-type": 2, prefix, "max-keys": limit, "continuation-token": opts.cursor }),
    context: { path: prefix },
  });
  const result = child(xml, "ListBucketResult");
  const keys = children(result, "Contents").map((c) => text(c, "Key") ?? "");
  const cursor = text(result, "IsTruncated") === "true" ? text(result, "NextContinuationToken") : undefined;
  return cursor ? { keys, cursor } : { keys };
}

/** DeleteObject for one key, DeleteObjects in batches for more; absent keys are no error. */
export async function deleteObjects(s3: S3Connection, keys: string[]): Promise<void> {
  if (keys.length === 1) return deleteObject(s3, keys[0] as string);
  for (let i = 0; i < keys.length; i += DELETE_BATCH) await deleteBatch(s3, keys.slice(i, i + DELETE_BATCH));
}

/**
 * One key, as the writer deletes the previous hasher state after each part: DeleteObject, a
 * body-less request and answer (204 whether or not the key existed), instead of DeleteObjects'
 * XML both ways with its Content-MD5.
 */
async function deleteObject(s3: S3Connection, key: string): Promise<void> {
  try {
    const response = await s3.request({ operation: "DeleteObject", method: "DELETE", url: s3.url(key), context: { path: key } });
    await response.body?.cancel();
  } catch (err) {
    // A store answering NoSuchKey for an absent key: absent keys are not an error here.
    if (!(err instanceof PathNotFoundError)) throw err;
  }
}

async function deleteBatch(s3: S3Connection, batch: string[]): Promise<void> {
  const xml = new TextEncoder().encode(buildXml({ Delete: { Quiet: "true", Object: batch.map((k) => ({ Key: k })) } }));
  const call: S3Call = {
    operation: "DeleteObjects",
    method: "POST",
    url: s3.url(undefined, { delete: "" }),
    context: { path: batch.join(",") },
    // AWS requires an integrity header on DeleteObjects.
    headers: { "content-type": "application/xml", "content-md5": await md5Base64(xml) },
    body: { bytes: xml, length: xml.length },
  };
  const failed = children(child((await s3.requestXml(call)).xml, "DeleteResult"), "Error")[0];
  if (failed) {
    const code = text(failed, "Code") ?? "DeleteFailed";
    throw s3.failure(
      new S3ResponseError("DeleteObjects", code, 200, undefined, text(failed, "Message") ?? "delete failed"),
      text(failed, "Key") ?? batch.join(","),
    );
  }
}

function rangeHeader(range: ByteRange): string {
  if ("suffix" in range) return `bytes=-${range.suffix}`;
  if (range.length === undefined) return `bytes=${range.offset}-`;
  return `bytes=${range.offset}-${range.offset + Math.max(range.length, 1) - 1}`;
}

async function md5Base64(bytes: Uint8Array): Promise<string> {
  return btoa(String.fromCharCode(...(await md5(bytes))));
}
