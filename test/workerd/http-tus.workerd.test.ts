import { SELF, env } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { bytesToBase64, formatReprDigest, hexToBytes, digestHex } from "../../shared/digest.ts";
import { BASE, MiB, bucketKeys, create, errorCode, getBlob, head, offsetOf, patch, seeded, sha256, upload } from "./http-support.ts";

describe("tus discovery and CORS", () => {
  test("OPTIONS /files advertises tus 1.0.0, our extensions, checksum algorithms and our limits", async () => {
    const res = await SELF.fetch(`${BASE}/files`, { method: "OPTIONS" });
    expect(res.status).toBe(204);
    expect(res.headers.get("tus-resumable")).toBe("1.0.0");
    expect(res.headers.get("tus-version")).toBe("1.0.0");
    expect(res.headers.get("tus-extension")).toBe("creation,creation-with-upload,expiration,checksum,termination");
    expect(res.headers.get("tus-checksum-algorithm")).toBe("sha1,sha256");
    expect(res.headers.get("tus-max-size")).toBe(String(64 * 1024 * MiB));
    expect(res.headers.get("upload-part-size")).toBe(String(8 * MiB));
    expect(res.headers.get("upload-max-chunk-size")).toBe(String(64 * MiB));
  });

  test("a CORS preflight allows Authorization and the tus headers; answers expose every tus header", async () => {
    const pre = await SELF.fetch(`${BASE}/files/abc`, {
      method: "OPTIONS",
      headers: { Origin: "https://app.example", "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization,upload-offset" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    const allowed = pre.headers.get("access-control-allow-headers")?.toLowerCase().split(",") ?? [];
    for (const h of ["authorization", "tus-resumable", "upload-offset", "upload-length", "upload-metadata", "upload-checksum", "repr-digest", "content-type"]) {
      expect(allowed).toContain(h);
    }
    expect(pre.headers.get("access-control-allow-methods")).toContain("PATCH");
    const post = await create({ length: 3, headers: { Origin: "https://app.example" } });
    expect(post.res.headers.get("access-control-allow-origin")).toBe("*");
    const exposed = post.res.headers.get("access-control-expose-headers")?.toLowerCase().split(",") ?? [];
    for (const h of [
      "location",
      "upload-offset",
      "upload-length",
      "upload-expires",
      "tus-resumable",
      "repr-digest",
      "content-location",
      "upload-part-size",
      "upload-max-chunk-size",
    ]) {
      expect(exposed).toContain(h);
    }
    // Errors carry CORS headers too, or a page could not read them.
    const bad = await SELF.fetch(`${BASE}/files`, { method: "POST", headers: { Origin: "https://app.example" } });
    expect(bad.status).toBe(412);
    expect(bad.headers.get("access-control-allow-origin")).toBe("*");
  });

  test("GET /health answers 200", async () => {
    expect((await SELF.fetch(`${BASE}/health`)).status).toBe(200);
  });
});

describe("upload lifecycle", () => {
  test.each([
    { size: 1, chunk: 1, note: "one byte" },
    { size: 5 * MiB + 3, chunk: 2 * MiB + 1, note: "chunks not a multiple of anything" },
    { size: 9 * MiB + 5, chunk: 8 * MiB, note: "chunks = the part size: a full part, then a short last one" },
  ])("$size bytes in $chunk-byte PATCHes ($note): 204s, blob byte-identical, Repr-Digest matches", async ({ size, chunk }) => {
    const data = seeded(size, size);
    const digest = await sha256(data);
    const { res, url, id } = await create({ length: size, metadata: { filename: "a.bin", filetype: "application/octet-stream" } });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toMatch(/^\/files\/[0-9a-f]{64}$/);
    expect(res.headers.get("upload-offset")).toBe("0");
    expect(Date.parse(res.headers.get("upload-expires") ?? "")).toBeGreaterThan(Date.now() + 6 * 86400_000);
    const last = await upload(url, data, chunk);
    expect(last.headers.get("upload-offset")).toBe(String(size));
    expect(last.headers.get("repr-digest")).toBe(formatReprDigest(digest));
    expect(last.headers.get("content-location")).toBe(`/blobs/${digest}`);
    const blob = await getBlob(`/blobs/${digest}`);
    expect(blob.status).toBe(200);
    expect(blob.headers.get("etag")).toBe(`"${digest}"`);
    expect(blob.headers.get("repr-digest")).toBe(formatReprDigest(digest));
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(data);
    // Finished: the bucket keeps no _uploads keys, but HEAD still answers 200 with the result.
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    const h = await head(url);
    expect(h.status).toBe(200);
    expect(h.headers.get("upload-offset")).toBe(String(size));
    expect(h.headers.get("upload-length")).toBe(String(size));
    expect(h.headers.get("cache-control")).toBe("no-store");
    expect(h.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect(h.headers.get("repr-digest")).toBe(formatReprDigest(digest));
  });

  test("a zero-length upload is complete at creation", async () => {
    const { res } = await create({ length: 0 });
    expect(res.status).toBe(201);
    expect(res.headers.get("upload-offset")).toBe("0");
    expect(res.headers.get("content-location")).toBe("/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });

  test("HEAD on a live upload reports the committed offset, length, metadata, expiry and limits", async () => {
    const { url } = await create({ length: 10, metadata: { filename: "x.txt" } });
    await patch(url, 0, seeded(4, 1));
    const res = await head(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("upload-offset")).toBe("4");
    expect(res.headers.get("upload-length")).toBe("10");
    expect(res.headers.get("upload-metadata")).toBe(`filename ${btoa("x.txt")}`);
    expect(res.headers.get("upload-expires")).toMatch(/GMT$/);
    expect(res.headers.get("upload-part-size")).toBe(String(8 * MiB));
    expect(res.headers.get("tus-resumable")).toBe("1.0.0");
    expect(res.headers.get("content-location")).toBeNull();
  });

  test("creation-with-upload: the POST body is the first chunk", async () => {
    const data = seeded(1500, 7);
    const { res, url } = await create({ length: 1500, body: data.subarray(0, 600) });
    expect(res.status).toBe(201);
    expect(res.headers.get("upload-offset")).toBe("600");
    const last = await upload(url, data, 900, undefined, 600);
    expect(last.headers.get("upload-offset")).toBe("1500");
  });

  test("a correct declared digest (metadata) gives the blob at Content-Location", async () => {
    const data = seeded(3 * MiB, 11);
    const digest = await sha256(data);
    const { url } = await create({ length: data.length, metadata: { filename: "d", digest } });
    const last = await upload(url, data, 2 * MiB);
    expect(last.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect(new Uint8Array(await (await getBlob(`/blobs/${digest}`)).arrayBuffer())).toEqual(data);
  });

  test("a wrong whole-upload digest (Repr-Digest on the last PATCH): 400 DIGEST_INVALID, no blob, upload gone", async () => {
    const data = seeded(2 * MiB + 9, 12);
    const actual = await sha256(data);
    const wrong = await sha256(seeded(5, 5));
    const { url, id } = await create({ length: data.length });
    await upload(url, data.subarray(0, MiB), MiB);
    const res = await patch(url, MiB, data.subarray(MiB), { headers: { "Repr-Digest": formatReprDigest(wrong) } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, string>;
    expect(body).toMatchObject({ code: "DIGEST_INVALID", expected: wrong, actual });
    const keys = await bucketKeys();
    expect(keys.filter((k) => k.includes(digestHex(actual)) || k.includes(digestHex(wrong)))).toEqual([]);
    expect(keys.filter((k) => k.includes(id))).toEqual([]);
    expect((await getBlob(`/blobs/${actual}`)).status).toBe(404);
    expect((await head(url)).status).toBe(404);
  });

  test("Repr-Digest on a PATCH before the last one: the final PATCH needs none, the blob is the declared digest's", async () => {
    const data = seeded(8 * MiB + 4099, 13);
    const digest = await sha256(data);
    const { url, id } = await create({ length: data.length });
    expect((await patch(url, 0, data.subarray(0, 8 * MiB + 1))).status).toBe(204); // one part stored under the upload
    const mid = await patch(url, 8 * MiB + 1, data.subarray(8 * MiB + 1, 8 * MiB + 2000), { headers: { "Repr-Digest": formatReprDigest(digest) } });
    expect(mid.status).toBe(204);
    expect(mid.headers.get("upload-offset")).toBe(String(8 * MiB + 2000));
    expect((await getBlob(`/blobs/${digest}`)).status).toBe(404); // not before it is verified
    // The upload now writes to a multipart upload at the blob path (its record says so).
    const infoKey = (await bucketKeys()).find((k) => k.includes(id) && k.endsWith("/info")) ?? "";
    const info = (await (await env.BUCKET.get(infoKey))?.json()) as { multipart?: { key: string }; declaredDigest?: string };
    expect(info).toMatchObject({
      declaredDigest: digest,
      multipart: { key: expect.stringContaining(`/blobs/sha256/${digestHex(digest).slice(0, 2)}/${digestHex(digest)}/data`) },
    });
    const last = await patch(url, 8 * MiB + 2000, data.subarray(8 * MiB + 2000));
    expect(last.status).toBe(204);
    expect(last.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect(new Uint8Array(await (await getBlob(`/blobs/${digest}`)).arrayBuffer())).toEqual(data);
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    // Declaring another digest now is a contradiction, not a new upload.
    const again = await create({ length: 10 });
    await patch(again.url, 0, seeded(2, 1), { headers: { "Repr-Digest": formatReprDigest(digest) } });
    const other = await patch(again.url, 2, seeded(2, 2), { headers: { "Repr-Digest": formatReprDigest(await sha256(seeded(1, 1))) } });
    expect(other.status).toBe(400);
    expect(((await other.json()) as { code: string }).code).toBe("DIGEST_MALFORMED");
  });

  test("Repr-Digest mid-upload naming a blob the namespace already has: complete at once, the parts stored are dropped", async () => {
    const data = seeded(8 * MiB + 77, 14);
    const digest = await sha256(data);
    const first = await create({ length: data.length });
    await upload(first.url, data, 8 * MiB); // linked now
    const { url, id } = await create({ length: data.length });
    expect((await patch(url, 0, data.subarray(0, 8 * MiB + 1))).status).toBe(204); // a part stored
    const res = await patch(url, 8 * MiB + 1, data.subarray(8 * MiB + 1, 8 * MiB + 50), { headers: { "Repr-Digest": formatReprDigest(digest) } });
    expect(res.status).toBe(204);
    expect(res.headers.get("upload-offset")).toBe(String(data.length));
    expect(res.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    const h = await head(url);
    expect(h.status).toBe(200);
    expect(h.headers.get("upload-offset")).toBe(String(data.length));
    expect(new Uint8Array(await (await getBlob(`/blobs/${digest}`)).arrayBuffer())).toEqual(data);
  });

  test("a declared digest already linked in the namespace completes at creation: no bytes sent", async () => {
    const data = seeded(MiB + 1, 13);
    const digest = await sha256(data);
    const first = await create({ length: data.length, headers: { "Repr-Digest": formatReprDigest(digest) } });
    await upload(first.url, data, MiB);
    const before = await bucketKeys();
    const again = await create({ length: data.length, metadata: { filename: "same", digest } });
    expect(again.res.status).toBe(201);
    expect(again.res.headers.get("upload-offset")).toBe(String(data.length));
    expect(again.res.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect(await bucketKeys()).toEqual(before);
    const h = await head(again.url);
    expect(h.headers.get("upload-offset")).toBe(String(data.length));
    expect(h.headers.get("repr-digest")).toBe(formatReprDigest(digest));
  });

  test("Upload-Checksum sha1/sha256 of the body: match appends; mismatch is 460 and nothing is kept", async () => {
    const data = seeded(10 * MiB, 14);
    const { url } = await create({ length: data.length });
    const first = data.subarray(0, 3 * MiB);
    const sha1 = bytesToBase64(new Uint8Array(await crypto.subtle.digest("SHA-1", first)));
    expect((await patch(url, 0, first, { headers: { "Upload-Checksum": `sha1 ${sha1}` } })).status).toBe(204);
    const second = data.subarray(3 * MiB, 9 * MiB);
    const wrong = bytesToBase64(hexToBytes(digestHex(await sha256(first))));
    const bad = await patch(url, 3 * MiB, second, { headers: { "Upload-Checksum": `sha256 ${wrong}` } });
    expect(bad.status).toBe(460);
    expect(await errorCode(bad)).toBe("CHECKSUM_MISMATCH");
    expect(await offsetOf(url)).toBe(3 * MiB);
    const good = bytesToBase64(hexToBytes(digestHex(await sha256(second))));
    expect((await patch(url, 3 * MiB, second, { headers: { "Upload-Checksum": `sha256 ${good}` } })).status).toBe(204);
    const last = await patch(url, 9 * MiB, data.subarray(9 * MiB));
    expect(last.headers.get("content-location")).toBe(`/blobs/${await sha256(data)}`);
  });

  test("DELETE: 204, every key of the upload gone, then 404", async () => {
    const { url, id } = await create({ length: 12 * MiB });
    await upload(url, seeded(9 * MiB, 15), 9 * MiB);
    expect((await bucketKeys()).some((k) => k.includes(id))).toBe(true);
    const res = await SELF.fetch(url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" } });
    expect(res.status).toBe(204);
    expect((await bucketKeys()).filter((k) => k.includes(id))).toEqual([]);
    expect((await head(url)).status).toBe(404);
    expect((await patch(url, 9 * MiB, seeded(3, 3))).status).toBe(404);
  });

  test("GET /blobs with Range: 206 with Content-Range; unsatisfiable 416; HEAD gives the length", async () => {
    const data = seeded(MiB, 16);
    const digest = await sha256(data);
    const { url } = await create({ length: data.length });
    await upload(url, data, MiB);
    const part = await getBlob(`/blobs/${digest}`, undefined, { Range: "bytes=100-199" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${MiB}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(data.subarray(100, 200));
    const suffix = await getBlob(`/blobs/${digest}`, undefined, { Range: "bytes=-10" });
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(data.subarray(MiB - 10));
    expect((await getBlob(`/blobs/${digest}`, undefined, { Range: `bytes=${MiB}-` })).status).toBe(416);
    const h = await SELF.fetch(`${BASE}/blobs/${digest}`, { method: "HEAD" });
    expect(h.status).toBe(200);
    expect(h.headers.get("content-length")).toBe(String(MiB));
    expect(h.headers.get("etag")).toBe(`"${digest}"`);
  });
});
