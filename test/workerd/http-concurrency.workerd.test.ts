import { describe, expect, test } from "vitest";
import { formatReprDigest } from "../../shared/digest.ts";
import { MiB, create, getBlob, offsetOf, patch, seeded, sha256, upload } from "./http-support.ts";

/** A request body of `declared` bytes that delivers `sent` of `data` and then errors, like a dropped connection. */
function brokenBody(data: Uint8Array, sent: number): ReadableStream<Uint8Array> {
  const { readable, writable } = new FixedLengthStream(data.length);
  const writer = writable.getWriter();
  void (async () => {
    for (let at = 0; at < sent; at += 256 * 1024) await writer.write(data.slice(at, Math.min(at + 256 * 1024, sent)));
    await writer.abort(new Error("connection dropped"));
  })().catch(() => undefined);
  return readable;
}

describe("one Durable Object serialises each upload", () => {
  test("eight concurrent PATCHes at the same offset: exactly one 204, seven 409, blob correct", async () => {
    const data = seeded(3 * MiB + 7, 21);
    const { url } = await create({ length: data.length });
    const first = data.subarray(0, 2 * MiB);
    const results = await Promise.all(Array.from({ length: 8 }, () => patch(url, 0, first)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([204, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expect(((await r.json()) as { code: string }).code).toBe("OFFSET_MISMATCH");
    expect(await offsetOf(url)).toBe(2 * MiB);
    const last = await patch(url, 2 * MiB, data.subarray(2 * MiB));
    expect(last.status).toBe(204);
    const digest = await sha256(data);
    expect(last.headers.get("repr-digest")).toBe(formatReprDigest(digest));
    expect(new Uint8Array(await (await getBlob(`/blobs/${digest}`)).arrayBuffer())).toEqual(data);
  });

  test("a PATCH cut off mid-body keeps a consistent committed offset; HEAD + PATCH from there gives the right blob", async () => {
    const data = seeded(12 * MiB + 11, 22);
    const { url } = await create({ length: data.length });
    // 9 MiB + 5 of a 12 MiB body arrive: one full 8 MiB part and more, then the connection drops.
    const cut = await patch(url, 0, brokenBody(data, 9 * MiB + 5), { headers: { "Content-Length": String(data.length) } }).catch((err: unknown) => err);
    if (cut instanceof Response) expect(cut.status).toBeGreaterThanOrEqual(400);
    const offset = await offsetOf(url);
    // At least the complete parts are kept; never more than was received.
    expect(offset).toBeGreaterThanOrEqual(8 * MiB);
    expect(offset).toBeLessThanOrEqual(9 * MiB + 5);
    const last = await upload(url, data, 4 * MiB, undefined, offset);
    const digest = await sha256(data);
    expect(last.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect(new Uint8Array(await (await getBlob(`/blobs/${digest}`)).arrayBuffer())).toEqual(data);
  });

  test("uploads are independent: interleaved PATCHes to two uploads both finish correctly", async () => {
    const a = seeded(2 * MiB + 1, 23);
    const b = seeded(2 * MiB + 2, 24);
    const [ua, ub] = await Promise.all([create({ length: a.length }), create({ length: b.length })]);
    const [ra, rb] = await Promise.all([upload(ua.url, a, MiB), upload(ub.url, b, MiB)]);
    expect(ra.headers.get("content-location")).toBe(`/blobs/${await sha256(a)}`);
    expect(rb.headers.get("content-location")).toBe(`/blobs/${await sha256(b)}`);
  });
});
