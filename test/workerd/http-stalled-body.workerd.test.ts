/**
 * A PATCH whose client went silent without closing the connection must not hold the upload's
 * queue forever: after BODY_IDLE_TIMEOUT_SECONDS (3 s in the workerd test bindings) the edge cuts
 * the body off, commits what arrived (all but at most the last read's worth, edge/body-chunks.ts),
 * and the resumed client's PATCH goes through.
 */
import { expect, test } from "vitest";
import { READ_MIN } from "../../edge/writer/body-chunks.ts";
import { MiB, create, getBlob, offsetOf, patch, seeded, sha256, upload } from "./http-support.ts";

/** A body that declares all of `data`, delivers `sent` bytes, then neither sends nor closes. */
function stalledBody(data: Uint8Array, sent: number): ReadableStream<Uint8Array> {
  const { readable, writable } = new FixedLengthStream(data.length);
  const writer = writable.getWriter();
  void (async () => {
    for (let at = 0; at < sent; at += 256 * 1024) await writer.write(data.slice(at, Math.min(at + 256 * 1024, sent)));
    // ...and then silence: the writer is never closed nor aborted.
  })().catch(() => undefined);
  return readable;
}

test("a stalled PATCH is cut off after the idle timeout, keeps what arrived, and frees the upload for the resumed PATCH", async () => {
  const data = seeded(12 * MiB + 3, 41);
  const { url } = await create({ length: data.length });
  const sent = 9 * MiB + 5;
  const stalled = patch(url, 0, stalledBody(data, sent), { headers: { "Content-Length": String(data.length) } });
  // The resumed client's PATCH is queued behind the stalled one; it is answered only once the
  // stalled body has been cut off (a 409 then: the cut-off request committed past 8 MiB).
  const early = patch(url, 0, data.subarray(0, MiB));
  const cut = await stalled;
  expect(cut.status).toBe(400);
  expect(((await cut.json()) as { code: string }).code).toBe("BODY_INCOMPLETE");
  expect((await early).status).toBe(409);
  const offset = await offsetOf(url);
  // Every byte the edge read was committed, the tail past the 8 MiB part included; a read still
  // waiting for its minimum when the body stalled is lost (at most READ_MIN bytes).
  expect(offset).toBeGreaterThan(8 * MiB);
  expect(offset).toBeGreaterThanOrEqual(sent - READ_MIN);
  expect(offset).toBeLessThanOrEqual(sent);
  const last = await upload(url, data, 4 * MiB, undefined, offset);
  const digest = await sha256(data);
  expect(last.headers.get("content-location")).toBe(`/blobs/${digest}`);
  expect(new Uint8Array(await (await getBlob(`/blobs/${digest}`)).arrayBuffer())).toEqual(data);
});
