import { SELF } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { formatReprDigest } from "../../shared/digest.ts";
import { BASE, MiB, create, head, offsetOf, patch, seeded, sha256, stubOf } from "./http-support.ts";

/** An upload with 5 bytes committed, to check that bad requests leave it as it was. */
async function live(length = 20): Promise<{ url: string; id: string }> {
  const { url, id } = await create({ length });
  expect((await patch(url, 0, seeded(5, 99))).status).toBe(204);
  return { url, id };
}

async function expectError(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { code: string; message: string };
  expect(body.code).toBe(code);
  expect(body.message.length).toBeGreaterThan(0);
}

describe("PATCH refusals leave the upload unchanged (HEAD offset before = after)", () => {
  const cases: { name: string; send: (url: string) => Promise<Response>; status: number; code: string }[] = [
    {
      name: "missing Tus-Resumable",
      status: 412,
      code: "TUS_VERSION_UNSUPPORTED",
      send: (url) =>
        SELF.fetch(url, { method: "PATCH", headers: { "Content-Type": "application/offset+octet-stream", "Upload-Offset": "5" }, body: seeded(3, 1) }),
    },
    {
      name: "wrong Tus-Resumable",
      status: 412,
      code: "TUS_VERSION_UNSUPPORTED",
      send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Tus-Resumable": "0.2.2" } }),
    },
    {
      name: "wrong content type",
      status: 415,
      code: "CONTENT_TYPE_INVALID",
      send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Content-Type": "application/octet-stream" } }),
    },
    { name: "offset behind", status: 409, code: "OFFSET_MISMATCH", send: (url) => patch(url, 2, seeded(3, 1)) },
    { name: "offset ahead", status: 409, code: "OFFSET_MISMATCH", send: (url) => patch(url, 8, seeded(3, 1)) },
    { name: "negative offset", status: 400, code: "BAD_REQUEST", send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Upload-Offset": "-5" } }) },
    { name: "non-numeric offset", status: 400, code: "BAD_REQUEST", send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Upload-Offset": "5abc" } }) },
    { name: "body larger than what is left of Upload-Length", status: 413, code: "UPLOAD_TOO_LARGE", send: (url) => patch(url, 5, seeded(16, 1)) },
    { name: "chunked body larger than what is left", status: 413, code: "UPLOAD_TOO_LARGE", send: (url) => patch(url, 5, new Blob([seeded(16, 1)]).stream()) },
    {
      name: "malformed Repr-Digest",
      status: 400,
      code: "DIGEST_MALFORMED",
      send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Repr-Digest": "sha-256=:abc:" } }),
    },
    {
      name: "unknown checksum algorithm",
      status: 400,
      code: "CHECKSUM_UNSUPPORTED",
      send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Upload-Checksum": "md5 1B2M2Y8AsgTpgAmY7PhCfg==" } }),
    },
    {
      name: "malformed checksum value",
      status: 400,
      code: "CHECKSUM_UNSUPPORTED",
      send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Upload-Checksum": "sha1 !!!" } }),
    },
    {
      name: "checksum mismatch",
      status: 460,
      code: "CHECKSUM_MISMATCH",
      send: (url) => patch(url, 5, seeded(3, 1), { headers: { "Upload-Checksum": "sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=" } }),
    },
  ];
  test.each(cases)("$name -> $status $code", async ({ send, status, code }) => {
    const { url } = await live();
    await expectError(await send(url), status, code);
    expect(await offsetOf(url)).toBe(5);
    // And it still continues normally.
    expect((await patch(url, 5, seeded(15, 2))).status).toBe(204);
  });

  test("a body over Upload-Max-Chunk-Size is refused before it is read: 413", async () => {
    const { url } = await live(200 * MiB);
    const res = await SELF.fetch(url, {
      method: "PATCH",
      headers: { "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "5", "Content-Length": String(64 * MiB + 1) },
      body: new FixedLengthStream(64 * MiB + 1).readable,
    });
    await expectError(res, 413, "UPLOAD_TOO_LARGE");
    expect(await offsetOf(url)).toBe(5);
  });
});

describe("POST refusals", () => {
  const bad: { name: string; headers: Record<string, string>; length?: string; status: number; code: string }[] = [
    { name: "missing Upload-Length", headers: {}, length: "", status: 400, code: "UPLOAD_LENGTH_INVALID" },
    { name: "negative Upload-Length", headers: {}, length: "-1", status: 400, code: "UPLOAD_LENGTH_INVALID" },
    { name: "non-numeric Upload-Length", headers: {}, length: "12abc", status: 400, code: "UPLOAD_LENGTH_INVALID" },
    { name: "fractional Upload-Length", headers: {}, length: "1.5", status: 400, code: "UPLOAD_LENGTH_INVALID" },
    { name: "huge Upload-Length", headers: {}, length: "99999999999999999999999", status: 413, code: "UPLOAD_TOO_LARGE" },
    { name: "Upload-Length over Tus-Max-Size", headers: {}, length: String(64 * 1024 * MiB + 1), status: 413, code: "UPLOAD_TOO_LARGE" },
    { name: "deferred length", headers: { "Upload-Defer-Length": "1" }, length: "", status: 400, code: "UPLOAD_LENGTH_INVALID" },
    { name: "metadata value not base64", headers: { "Upload-Metadata": "filename a*b" }, status: 400, code: "METADATA_INVALID" },
    { name: "metadata duplicate key", headers: { "Upload-Metadata": "a YQ==,a Yg==" }, status: 400, code: "METADATA_INVALID" },
    { name: "metadata three parts", headers: { "Upload-Metadata": "a YQ== YQ==" }, status: 400, code: "METADATA_INVALID" },
    { name: "metadata digest not sha256:<hex>", headers: { "Upload-Metadata": `digest ${btoa("md5:abc")}` }, status: 400, code: "DIGEST_MALFORMED" },
    {
      name: "metadata digest in upper case",
      headers: { "Upload-Metadata": `digest ${btoa(`sha256:${"A".repeat(64)}`)}` },
      status: 400,
      code: "DIGEST_MALFORMED",
    },
    { name: "Repr-Digest of 31 bytes", headers: { "Repr-Digest": `sha-256=:${btoa("x".repeat(31))}:` }, status: 400, code: "DIGEST_MALFORMED" },
    { name: "wrong Tus-Resumable", headers: { "Tus-Resumable": "2.0.0" }, status: 412, code: "TUS_VERSION_UNSUPPORTED" },
  ];
  test.each(bad)("$name -> $status $code", async ({ headers, length, status, code }) => {
    const h: Record<string, string> = { "Tus-Resumable": "1.0.0", "Upload-Length": length ?? "10", ...headers };
    if (length === "") delete h["Upload-Length"];
    const res = await SELF.fetch(`${BASE}/files`, { method: "POST", headers: h });
    await expectError(res, status, code);
    expect(res.headers.get("location")).toBeNull();
  });

  test("metadata digest and Repr-Digest that disagree -> 400 DIGEST_MALFORMED", async () => {
    const a = await sha256(seeded(1, 1));
    const b = await sha256(seeded(1, 2));
    const { res } = await create({ length: 1, metadata: { digest: a }, headers: { "Repr-Digest": formatReprDigest(b) } });
    await expectError(res, 400, "DIGEST_MALFORMED");
  });

  test("a creation-with-upload body with the wrong content type -> 415", async () => {
    const res = await SELF.fetch(`${BASE}/files`, {
      method: "POST",
      headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "3", "Content-Type": "text/plain" },
      body: "abc",
    });
    await expectError(res, 415, "CONTENT_TYPE_INVALID");
  });
});

describe("ids that do not name an upload of this namespace", () => {
  const crafted = [
    "0".repeat(64), // well-formed, never created
    "A".repeat(64), // upper case
    "..",
    "..%2F..%2Fblobs",
    "%2e%2e",
    "abc",
    `${"a".repeat(64)}%2F..`,
    "f".repeat(65),
  ];
  test.each(crafted)("HEAD/PATCH/DELETE /files/%s -> 404", async (id) => {
    const url = `${BASE}/files/${id}`;
    const h = await head(url);
    expect(h.status).toBe(404);
    await expectError(await patch(url, 0, seeded(1, 1)), 404, await errorCodeOf(url));
    const d = await SELF.fetch(url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" } });
    expect(d.status).toBe(404);
  });

  test("paths crafted to escape /files/<id> never reach another route", async () => {
    for (const path of ["/files/../blobs/x", "/files/%2e%2e/health", "/files/a/b", "/blobs/sha256:..%2F..", "/blobs/SHA256:" + "a".repeat(64)]) {
      const res = await SELF.fetch(`${BASE}${path}`, {
        method: "PATCH",
        headers: { "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0" },
        body: "x",
      });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    for (const path of ["/blobs/sha256:..%2F..", `/blobs/SHA256:${"a".repeat(64)}`, `/blobs/sha256:${"A".repeat(64)}`, "/blobs/..%2F_uploads"]) {
      const res = await SELF.fetch(`${BASE}${path}`);
      await expectError(res, 404, "BLOB_UNKNOWN");
    }
  });

  test("an expired upload answers 410 to HEAD and PATCH, and its offset is not changed", async () => {
    const { url, id } = await live();
    await runExpire(id);
    expect((await head(url)).status).toBe(410);
    await expectError(await patch(url, 5, seeded(3, 1)), 410, "UPLOAD_EXPIRED");
    await runExpire(id, 3600_000); // back in time: the 410 changed nothing
    expect(await offsetOf(url)).toBe(5);
  });
});

/** PATCH to a malformed id is a 404 from the route (UPLOAD_UNKNOWN) or, for paths no route matches, NOT_FOUND. */
async function errorCodeOf(url: string): Promise<string> {
  const path = new URL(url).pathname;
  return /^\/files\/[^/]+$/.test(path) ? "UPLOAD_UNKNOWN" : "NOT_FOUND";
}

/** Moves the upload's expiry (into the past by default) through its Durable Object's storage. */
async function runExpire(id: string, shiftMs = -1000): Promise<void> {
  const { runInDurableObject } = await import("cloudflare:test");
  await runInDurableObject(stubOf(id), async (_instance, state) => {
    const record = await state.storage.get<{ expiresAt: number }>("upload");
    if (!record) throw new Error("no record");
    await state.storage.put("upload", { ...record, expiresAt: Date.now() + shiftMs });
  });
}
