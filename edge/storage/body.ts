/**
 * Body helpers shared by drivers, in any runtime: a PutBody as bytes (memory driver, checksums),
 * bytes as a stream. Those needing workerd (a stream of known length, MD5) are in ./workerd-body.ts.
 */
import type { PutBody, SizedStream } from "./driver.ts";

/** Reads a whole body into memory; a sized stream that delivers another length is an error. */
export async function bodyBytes(body: PutBody): Promise<Uint8Array> {
  if (typeof body === "string") return new TextEncoder().encode(body);
  if (body instanceof Uint8Array) return body;
  const bytes = await readAll(body.stream);
  if (bytes.length !== body.length) {
    throw new RangeError(`stream delivered ${bytes.length} bytes, ${body.length} were declared`);
  }
  return bytes;
}

/** Concatenates a stream's chunks. Only for bodies known to be small or bounded by the caller. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  return concat(chunks, total);
}

export function concat(chunks: Uint8Array[], total = chunks.reduce((n, c) => n + c.length, 0)): Uint8Array {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A one-chunk stream over bytes. */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** True for the `{ stream, length }` form of a body. */
export function isSizedStream(body: PutBody): body is SizedStream {
  return typeof body === "object" && !(body instanceof Uint8Array);
}

/** Lowercase hex SHA-256 of bytes (Web Crypto; available in browsers, Node and workerd). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  let out = "";
  for (const b of digest) out += b.toString(16).padStart(2, "0");
  return out;
}
