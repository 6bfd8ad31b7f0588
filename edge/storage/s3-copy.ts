/**
 * The S3 driver's server-side copy (./s3.ts), so the move at finish sends no blob bytes through
 * the worker: CopyObject up to 5 GiB (its limit), above that a multipart upload of UploadPartCopy
 * ranges. Either copies the object it statted: a concurrent overwrite of the source fails the copy.
 */
import { MULTIPART_LIMITS, type ObjectInfo, type UploadedPart } from "./driver.ts";
import { createMultipart } from "./s3-multipart.ts";
import { headObject } from "./s3-objects.ts";
import { dateOf, unquote, type S3Call, type S3Connection } from "./s3-request.ts";
import type { S3DriverOptions } from "./s3.ts";
import { child, text } from "./s3-xml.ts";

const GiB = 1024 * 1024 * 1024;
/** CopyObject copies at most 5 GiB in one request. */
const MAX_COPY_OBJECT_SIZE = 5 * GiB;
const DEFAULT_COPY_PART_SIZE = 512 * 1024 * 1024;
const COPY_CONCURRENCY = 4;

/** How objects are copied: in one CopyObject up to `threshold` bytes, else in parts of `partSize`. */
export interface CopySettings {
  threshold: number;
  partSize: number;
}

/** The copy options, checked. */
export function copySettings(options: Pick<S3DriverOptions, "multipartCopyThreshold" | "copyPartSize">): CopySettings {
  const threshold = Math.min(options.multipartCopyThreshold ?? MAX_COPY_OBJECT_SIZE, MAX_COPY_OBJECT_SIZE);
  const partSize = options.copyPartSize ?? DEFAULT_COPY_PART_SIZE;
  if (partSize < MULTIPART_LIMITS.minPartSize || partSize > MULTIPART_LIMITS.maxPartSize) {
    throw new RangeError(`createS3Driver: copyPartSize must be from ${MULTIPART_LIMITS.minPartSize} to ${MULTIPART_LIMITS.maxPartSize}`);
  }
  return { threshold, partSize };
}

/** The interface's `copy`: CopyObject, or UploadPartCopy ranges above the threshold. */
export async function copyObject(s3: S3Connection, settings: CopySettings, from: string, to: string): Promise<ObjectInfo> {
  const source = await headObject(s3, from);
  if (source.size > settings.threshold) return multipartCopy(s3, settings.partSize, from, to, source);
  const call: S3Call = {
    operation: "CopyObject",
    method: "PUT",
    url: s3.url(to),
    context: { path: from },
    headers: { "x-amz-copy-source": s3.copySource(from), "x-amz-copy-source-if-match": `"${source.etag}"` },
    work: source.size,
  };
  const { response, xml } = await s3.requestXml(call);
  const result = child(xml, "CopyObjectResult");
  const modified = text(result, "LastModified");
  return { key: to, size: source.size, etag: unquote(text(result, "ETag") ?? ""), modified: modified ? new Date(modified) : dateOf(response.headers) };
}

/** UploadPartCopy ranges into a multipart upload at `to` (sources over CopyObject's 5 GiB). */
async function multipartCopy(s3: S3Connection, copyPartSize: number, from: string, to: string, source: ObjectInfo): Promise<ObjectInfo> {
  const partSize = Math.max(copyPartSize, Math.ceil(source.size / MULTIPART_LIMITS.maxParts / (1024 * 1024)) * 1024 * 1024);
  const upload = await createMultipart(s3, to);
  try {
    const ranges: { partNumber: number; first: number; last: number }[] = [];
    for (let offset = 0, n = 1; offset < source.size; offset += partSize, n++) {
      ranges.push({ partNumber: n, first: offset, last: Math.min(offset + partSize, source.size) - 1 });
    }
    const parts: UploadedPart[] = [];
    for (let i = 0; i < ranges.length; i += COPY_CONCURRENCY) {
      const batch = ranges.slice(i, i + COPY_CONCURRENCY).map(async ({ partNumber, first, last }) => {
        const call: S3Call = {
          operation: "UploadPartCopy",
          method: "PUT",
          url: s3.url(to, { partNumber, uploadId: upload.uploadId }),
          context: { path: from, uploadId: upload.uploadId },
          headers: {
            "x-amz-copy-source": s3.copySource(from),
            "x-amz-copy-source-range": `bytes=${first}-${last}`,
            // The object statted is the one copied: a concurrent overwrite fails the copy.
            "x-amz-copy-source-if-match": `"${source.etag}"`,
          },
          work: last - first + 1,
        };
        const result = child((await s3.requestXml(call)).xml, "CopyPartResult");
        return { partNumber, etag: unquote(text(result, "ETag") ?? "") };
      });
      parts.push(...(await Promise.all(batch)));
    }
    const done = await upload.complete(parts);
    return { ...done, size: source.size };
  } catch (err) {
    await upload.abort().catch(() => undefined);
    throw err;
  }
}
