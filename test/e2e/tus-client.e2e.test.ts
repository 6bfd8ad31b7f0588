/**
 * tus-js-client (Node) against the `npm start` stack over real HTTP: several sizes, chunk sizes
 * that are and are not multiples of the 8 MiB part size, a stopped upload resumed from its URL,
 * and a PATCH whose socket is destroyed mid-body.
 */
import { createHash } from "node:crypto";
import { request } from "node:http";
import * as tus from "tus-js-client";
import { describe, expect, inject, test } from "vitest";
import { seededBytes } from "../support/seeded.ts";

const MiB = 1024 * 1024;
const baseUrl = inject("baseUrl");

function seeded(size: number, seed: number): Buffer {
  const bytes = seededBytes(size, seed);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function sha256(data: Buffer): { digest: string; repr: string } {
  const raw = createHash("sha256").update(data).digest();
  return { digest: `sha256:${raw.toString("hex")}`, repr: `sha-256=:${raw.toString("base64")}:` };
}

interface Outcome {
  url: string;
  reprDigest: string | null;
  contentLocation: string | null;
}

function tusUpload(data: Buffer, options: Partial<tus.UploadOptions> & { stopAfterBytes?: number }): Promise<Outcome | { stoppedAt: string }> {
  return new Promise((resolve, reject) => {
    const { stopAfterBytes, ...rest } = options;
    const upload: tus.Upload = new tus.Upload(data, {
      endpoint: `${baseUrl}/files`,
      metadata: { filename: "data.bin", filetype: "application/octet-stream" },
      retryDelays: null,
      ...rest,
      onChunkComplete(_chunk, accepted) {
        if (stopAfterBytes !== undefined && accepted >= stopAfterBytes) {
          void upload.abort().then(() => resolve({ stoppedAt: upload.url ?? "" }));
        }
      },
      onSuccess({ lastResponse }) {
        resolve({
          url: upload.url ?? "",
          reprDigest: lastResponse.getHeader("Repr-Digest") ?? null,
          contentLocation: lastResponse.getHeader("Content-Location") ?? null,
        });
      },
      onError: reject,
    });
    upload.start();
  });
}

async function blob(location: string): Promise<Buffer> {
  const res = await fetch(new URL(location, baseUrl));
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe("tus-js-client uploads", () => {
  test.each([
    { size: 1, chunkSize: Number.POSITIVE_INFINITY },
    { size: 5 * MiB + 3, chunkSize: 8 * MiB },
    { size: 17 * MiB + 17, chunkSize: 8 * MiB },
    { size: 13 * MiB + 1, chunkSize: 3 * MiB + 5 },
  ])("$size bytes in $chunkSize-byte chunks: the blob is byte-identical and Repr-Digest matches", async ({ size, chunkSize }) => {
    const data = seeded(size, size);
    const { digest, repr } = sha256(data);
    const result = (await tusUpload(data, { chunkSize })) as Outcome;
    expect(result.reprDigest).toBe(repr);
    expect(result.contentLocation).toBe(`/blobs/${digest}`);
    expect((await blob(result.contentLocation ?? "")).equals(data)).toBe(true);
    const h = await fetch(result.url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
    expect(h.status).toBe(200);
    expect(h.headers.get("upload-offset")).toBe(String(size));
  });

  test("a stopped upload resumes from its URL and sends only what is missing", async () => {
    const data = seeded(17 * MiB + 99, 77);
    const { digest, repr } = sha256(data);
    const stopped = (await tusUpload(data, { chunkSize: 8 * MiB, stopAfterBytes: 8 * MiB })) as { stoppedAt: string };
    expect(stopped.stoppedAt).toMatch(/\/files\/[0-9a-f]{64}$/);
    const h = await fetch(stopped.stoppedAt, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
    const committed = Number(h.headers.get("upload-offset"));
    expect(committed).toBeGreaterThanOrEqual(8 * MiB);
    expect(committed).toBeLessThan(data.length);
    let firstOffset = -1;
    const resumed = (await tusUpload(data, {
      chunkSize: 5 * MiB + 1,
      uploadUrl: stopped.stoppedAt,
      onBeforeRequest(req) {
        if (req.getMethod() === "PATCH" && firstOffset < 0) firstOffset = Number(req.getHeader("Upload-Offset"));
      },
    })) as Outcome;
    expect(resumed.url).toBe(stopped.stoppedAt);
    expect(firstOffset).toBe(committed);
    expect(resumed.reprDigest).toBe(repr);
    expect((await blob(`/blobs/${digest}`)).equals(data)).toBe(true);
  });
});

describe("a connection dropped mid-PATCH over real HTTP", () => {
  test("the socket is destroyed after 9 MiB of 12 MiB: HEAD gives a committed offset and the next PATCH finishes the right blob", async () => {
    const data = seeded(12 * MiB + 5, 88);
    const { digest } = sha256(data);
    const post = await fetch(`${baseUrl}/files`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": String(data.length) } });
    expect(post.status).toBe(201);
    const url = new URL(post.headers.get("location") ?? "", baseUrl);

    await new Promise<void>((resolve) => {
      const req = request(url, {
        method: "PATCH",
        headers: { "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0", "Content-Length": String(data.length) },
      });
      req.on("error", () => resolve());
      req.on("close", () => resolve());
      req.write(data.subarray(0, 9 * MiB), () => setImmediate(() => req.destroy()));
    });

    // A client's resume loop: HEAD, PATCH the rest; a 409 means the server was still committing.
    let done: Response | undefined;
    for (let attempt = 0; attempt < 20 && !done; attempt++) {
      const h = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
      expect(h.status).toBe(200);
      const offset = Number(h.headers.get("upload-offset"));
      expect(offset).toBeLessThanOrEqual(9 * MiB);
      const res = await fetch(url, {
        method: "PATCH",
        headers: { "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset) },
        body: new Uint8Array(data.subarray(offset)),
      });
      if (res.status === 204) done = res;
      else expect(res.status).toBe(409);
    }
    expect(done?.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect((await blob(`/blobs/${digest}`)).equals(data)).toBe(true);
  });
});
