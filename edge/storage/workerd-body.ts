/**
 * Body helpers of the drivers that run only in workerd (R2, S3): a stream sent with its length
 * known, and MD5, which workerd's Web Crypto offers (Node's and browsers' do not) because S3 and
 * R2 use it for ETags.
 */
import type { SizedStream } from "./driver.ts";

/**
 * A stream sent through a FixedLengthStream, so workerd sends a Content-Length instead of chunked
 * encoding: S3 refuses a PUT without one (411 MissingContentLength), production R2 a stream of
 * unknown length.
 */
export function fixedLength(body: SizedStream): ReadableStream<Uint8Array> {
  const fixed = new FixedLengthStream(body.length);
  void body.stream.pipeTo(fixed.writable).catch(() => {
    // Surfaces as the request reading fixed.readable failing: the store sees a short body.
  });
  return fixed.readable as ReadableStream<Uint8Array>;
}

/** MD5, which S3 uses for ETags and Content-MD5. */
export async function md5(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("MD5", bytes as Uint8Array<ArrayBuffer>));
}

/** MD5 in hex, as a single put's ETag carries it. */
export async function md5Hex(bytes: Uint8Array): Promise<string> {
  return Array.from(await md5(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether a stored object is exactly `bytes`, after a conditional write whose answer was lost:
 * the ETag of a single put is the body's MD5 on R2, AWS and MinIO; where it is something else
 * (SSE-KMS), the object is read back and compared.
 */
export async function isSameBody(stored: { size: number; etag: string }, readBack: () => Promise<Uint8Array>, bytes: Uint8Array): Promise<boolean> {
  if (stored.size !== bytes.length) return false;
  if (stored.etag === (await md5Hex(bytes))) return true;
  const back = await readBack();
  return back.length === bytes.length && back.every((b, i) => b === bytes[i]);
}
