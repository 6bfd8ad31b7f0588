/**
 * The S3 driver's multipart uploads (./s3.ts): CreateMultipartUpload made idempotent, UploadPart,
 * AbortMultipartUpload, and CompleteMultipartUpload preceded by ListParts, so the interface's
 * rules (R2's, ./driver.ts) are checked on the parts the store holds.
 */
import {
  InvalidPartError,
  MULTIPART_LIMITS,
  MultipartUnknownError,
  PathNotFoundError,
  type MultipartUpload,
  type ObjectInfo,
  type UploadedPart,
} from "./driver.ts";
import { S3RequestError, S3ResponseError } from "./s3-errors.ts";
import { headObject } from "./s3-objects.ts";
import { bytesPayload, dateOf, NAME, noAttempts, payload, unquote, type S3Call, type S3Connection } from "./s3-request.ts";
import { buildXml, child, children, text, type XmlElement } from "./s3-xml.ts";
import { md5Hex } from "./workerd-body.ts";

/**
 * The store's clock (Initiated of ListMultipartUploads) is compared with ours through its Date
 * header, which has one-second resolution: candidates are taken this much wider on each side.
 */
const CLOCK_MARGIN_MS = 2_000;

type StoredParts = Map<number, { etag: string; size: number }>;

/** The handle of an upload known by its id: the interface's `resumeMultipart`. */
export function multipartUpload(s3: S3Connection, key: string, uploadId: string): MultipartUpload {
  return {
    key,
    uploadId,
    async uploadPart(partNumber, body) {
      const url = s3.url(key, { partNumber, uploadId });
      const response = await s3.request({ operation: "UploadPart", method: "PUT", url, context: { path: key, uploadId }, body: payload(body) });
      return { partNumber, etag: unquote(response.headers.get("etag") ?? "") };
    },
    complete: (parts) => completeMultipart(s3, key, uploadId, parts),
    async abort() {
      try {
        await s3.request({ operation: "AbortMultipartUpload", method: "DELETE", url: s3.url(key, { uploadId }), context: { path: key, uploadId } });
      } catch (err) {
        // NoSuchUpload: already aborted or completed, which the interface does not count as an error.
        if (!(err instanceof MultipartUnknownError)) throw err;
      }
    },
  };
}

/**
 * CreateMultipartUpload, made idempotent. S3 has no idempotency token for it, so an attempt
 * whose answer was lost (timeout, network error, 500) may have created an upload nobody knows
 * the id of: parts of it would be billed until a lifecycle rule aborts it. After such a retry
 * the driver lists the key's multipart uploads (ListMultipartUploads) and ABORTS every one
 * initiated while the lost attempts were under way (the store's clock read through its Date
 * header, with a 2 s margin) that holds no parts, keeping the one whose answer arrived. Aborting
 * rather than reusing one: the driver never hands out an upload it did not see created, and an
 * upload with no parts that nobody has the id of is exactly what a lost answer leaves behind.
 * (Another writer's upload of the same key created within those seconds and still without a
 * part would be aborted too; its next UploadPart fails MultipartUnknownError, which the writer
 * treats as a lost upload.) The clean-up is best effort: a store without ListMultipartUploads, or
 * one failing it, leaves the orphan to the bucket's lifecycle rule and the create still succeeds;
 * so does a create that fails in the end.
 */
export async function createMultipart(s3: S3Connection, key: string): Promise<MultipartUpload> {
  const started = Date.now();
  const seen = noAttempts();
  // When every attempt fails the store is down or unreachable: cleaning up then would hold the
  // caller through another round of retries, so those orphans are left to the lifecycle rule.
  const answer = await s3.requestXml({ operation: "CreateMultipartUpload", method: "POST", url: s3.url(key, { uploads: "" }), context: { path: key } }, seen);
  const uploadId = text(child(answer.xml, "InitiateMultipartUploadResult"), "UploadId");
  if (!uploadId) {
    const failure = new S3ResponseError("CreateMultipartUpload", "MalformedResponse", answer.response.status, undefined, "no UploadId in the response");
    throw new S3RequestError(key, NAME, failure);
  }
  if (seen.effectUnknown) await abortOrphans(s3, key, uploadId, started);
  return multipartUpload(s3, key, uploadId);
}

/** The clean-up half of createMultipart: aborts part-less uploads of `key` initiated since `started` (our clock), but `keep`. */
async function abortOrphans(s3: S3Connection, key: string, keep: string, started: number): Promise<void> {
  try {
    const { response, xml } = await s3.requestXml({
      operation: "ListMultipartUploads",
      method: "GET",
      url: s3.url(undefined, { uploads: "", prefix: key, "max-uploads": 1000 }),
      context: { path: key },
    });
    const received = Date.now();
    const serverNow = Date.parse(response.headers.get("date") ?? "");
    const skew = Number.isNaN(serverNow) ? 0 : serverNow - received;
    const from = started + skew - CLOCK_MARGIN_MS;
    const to = received + skew + CLOCK_MARGIN_MS;
    for (const upload of children(child(xml, "ListMultipartUploadsResult"), "Upload")) {
      const id = text(upload, "UploadId");
      const initiated = Date.parse(text(upload, "Initiated") ?? "");
      if (text(upload, "Key") !== key || !id || id === keep || !(initiated >= from && initiated <= to)) continue;
      if ((await listParts(s3, key, id)).size > 0) continue;
      await multipartUpload(s3, key, id).abort();
    }
  } catch {
    // Best effort (see createMultipart): the bucket's lifecycle rule is the backstop.
  }
}

/** CompleteMultipartUpload, after the parts were checked against what the store holds. */
async function completeMultipart(s3: S3Connection, key: string, uploadId: string, parts: UploadedPart[]): Promise<ObjectInfo> {
  const stored = await listParts(s3, key, uploadId);
  const size = checkParts(key, stored, parts);
  const call: S3Call = {
    operation: "CompleteMultipartUpload",
    method: "POST",
    url: s3.url(key, { uploadId }),
    context: { path: key, uploadId },
    headers: { "content-type": "application/xml" },
    body: bytesPayload(buildXml({ CompleteMultipartUpload: { Part: parts.map((p) => ({ PartNumber: String(p.partNumber), ETag: `"${p.etag}"` })) } })),
  };
  const partsEtag = () => multipartEtag(parts.map((p) => stored.get(p.partNumber)?.etag ?? ""));
  const seen = noAttempts();
  try {
    const { response, xml } = await s3.requestXml(call, seen);
    let etag = unquote(text(child(xml, "CompleteMultipartUploadResult"), "ETag") ?? "");
    // Ceph RGW 16 answers an empty <ETag> (a known bug; HEAD gives the right one): S3's
    // multipart ETag of these parts, or the object's own when the parts' are no MD5s.
    if (!etag) etag = (await partsEtag()) ?? (await headObject(s3, key)).etag;
    return { key, size, etag, modified: dateOf(response.headers) };
  } catch (err) {
    // An earlier attempt may have completed the upload and lost its answer: the retry then
    // finds the upload id gone. The object is ours when its ETag is the multipart ETag of
    // exactly these parts (S3's MD5 of the parts' MD5s, "-" and the count).
    if (!(err instanceof MultipartUnknownError) || !seen.effectUnknown) throw err;
    const expected = await partsEtag();
    const info = expected ? await headObject(s3, key).catch(() => undefined) : undefined;
    if (info && info.etag === expected && info.size === size) return info;
    throw err;
  }
}

/** Every part the store holds for an upload (ListParts, paged). */
async function listParts(s3: S3Connection, key: string, uploadId: string): Promise<StoredParts> {
  const parts: StoredParts = new Map();
  let marker: string | undefined;
  do {
    let xml: XmlElement;
    try {
      ({ xml } = await s3.requestXml({
        operation: "ListParts",
        method: "GET",
        url: s3.url(key, { uploadId, "max-parts": 1000, "part-number-marker": marker }),
        context: { path: key, uploadId },
      }));
    } catch (err) {
      // Ceph RGW answers ListParts of an aborted or completed upload with NoSuchKey, not
      // NoSuchUpload: for ListParts both mean the upload id is gone.
      if (err instanceof PathNotFoundError) throw new MultipartUnknownError(key, NAME, uploadId, { cause: err.cause });
      throw err;
    }
    const result = child(xml, "ListPartsResult");
    for (const part of children(result, "Part")) {
      parts.set(Number(text(part, "PartNumber")), { etag: unquote(text(part, "ETag") ?? ""), size: Number(text(part, "Size")) });
    }
    marker = text(result, "IsTruncated") === "true" ? text(result, "NextPartNumberMarker") : undefined;
  } while (marker);
  return parts;
}

/**
 * The interface's multipart rules (R2's), checked against what the store holds before
 * CompleteMultipartUpload, which on S3 would accept unequal parts. Returns the object's size.
 */
function checkParts(key: string, stored: StoredParts, parts: UploadedPart[]): number {
  if (parts.length === 0) throw new InvalidPartError(key, NAME, "no parts");
  if (parts.length > MULTIPART_LIMITS.maxParts) throw new InvalidPartError(key, NAME, `more than ${MULTIPART_LIMITS.maxParts} parts`);
  let previous = 0;
  let total = 0;
  let first: number | undefined;
  parts.forEach((p, i) => {
    if (p.partNumber <= previous) throw new InvalidPartError(key, NAME, "part numbers must be ascending");
    previous = p.partNumber;
    const s = stored.get(p.partNumber);
    if (!s || s.etag !== unquote(p.etag)) throw new InvalidPartError(key, NAME, `part ${p.partNumber} not found (unknown or stale etag)`);
    total += s.size;
    if (i === parts.length - 1) return;
    first ??= s.size;
    if (s.size !== first)
      throw new InvalidPartError(key, NAME, `part ${p.partNumber} is ${s.size} bytes, not ${first}: all parts but the last must be the same size`);
    if (s.size < MULTIPART_LIMITS.minPartSize)
      throw new InvalidPartError(key, NAME, `part ${p.partNumber} is smaller than ${MULTIPART_LIMITS.minPartSize} bytes`);
  });
  return total;
}

/** S3's ETag of a completed multipart upload: MD5 of the parts' binary MD5s, "-", the count; undefined when a part's ETag is no MD5. */
async function multipartEtag(partEtags: string[]): Promise<string | undefined> {
  if (partEtags.length === 0 || !partEtags.every((e) => /^[0-9a-f]{32}$/i.test(e))) return undefined;
  const joined = new Uint8Array(partEtags.length * 16);
  partEtags.forEach((e, i) => {
    for (let j = 0; j < 16; j++) joined[i * 16 + j] = parseInt(e.slice(j * 2, j * 2 + 2), 16);
  });
  return `${await md5Hex(joined)}-${partEtags.length}`;
}
