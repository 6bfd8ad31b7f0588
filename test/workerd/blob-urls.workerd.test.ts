/**
 * Signed blob links (issue 16): a finished upload's answers carry Upload-Blob-Url, a read-only,
 * expiring link to its blob in the caller's namespace that needs no Authorization (signBlobUrl
 * mints the same from a backend); a tampered, foreign or expired link is 403 and says nothing more.
 */
import { SELF, env } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { createRoutes } from "../../edge/http/app.ts";
import { signBlobUrl } from "../../edge/server.ts";
import { BASE, SECRET, auth, create, head, seeded, sha256, tokenFor, upload } from "./http-support.ts";

const SIZE = 1500;

async function finished(ns: string | undefined, seed: number) {
  const token = ns ? await tokenFor(ns) : undefined;
  const data = seeded(SIZE, seed);
  const { url } = await create({ length: SIZE, ...(token ? { token } : {}) });
  const res = await upload(url, data, SIZE, token);
  return { token, data, url, res, digest: await sha256(data) };
}

async function get(link: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(new URL(link, BASE), init);
}

function expectForbidden(res: Response): Promise<void> {
  expect(res.status).toBe(403);
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  expect(res.headers.get("cache-control")).toBe("no-store");
  return res.json().then((body) => expect(body).toEqual({ code: "FORBIDDEN", message: "link invalid or expired" }));
}

describe("signed blob links", () => {
  test("the finishing PATCH and HEAD carry Upload-Blob-Url; GET and HEAD on it need no Authorization; CORS exposes it", async () => {
    const { token, data, url, res, digest } = await finished("links-a", 170);
    const link = res.headers.get("upload-blob-url");
    expect(link).toMatch(new RegExp(`^/blobs/${digest}\\?ns=links-a&exp=\\d+&sig=[A-Za-z0-9_-]{43}$`));
    const exp = Number(new URL(link ?? "", BASE).searchParams.get("exp"));
    expect(exp).toBeGreaterThan(Date.now() / 1000 + 3000); // default TTL 1 h
    expect(exp).toBeLessThanOrEqual(Date.now() / 1000 + 3601);
    expect((await head(url, token)).headers.get("upload-blob-url")).toMatch(/^\/blobs\/sha256:/);

    const body = await get(link ?? "");
    expect(body.status).toBe(200);
    expect(new Uint8Array(await body.arrayBuffer())).toEqual(data);
    const h = await get(link ?? "", { method: "HEAD" });
    expect(h.status).toBe(200);
    expect(h.headers.get("content-length")).toBe(String(SIZE));
    // Without the link, the same blob needs the token.
    expect((await get(`/blobs/${digest}`)).status).toBe(404); // anonymous namespace: not linked there

    const cors = await SELF.fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", Origin: "https://page.test", ...auth(token) } });
    expect(cors.headers.get("access-control-expose-headers")?.split(",")).toContain("Upload-Blob-Url");
  });

  test("tampered signature, another namespace, another blob or an expired link: 403 with nothing leaked", async () => {
    const a = await finished("links-b", 171);
    const b = await finished("links-c", 172);
    const link = new URL(a.res.headers.get("upload-blob-url") ?? "", BASE);
    const sig = link.searchParams.get("sig") ?? "";
    const variants: URL[] = [];
    const tampered = new URL(link);
    tampered.searchParams.set("sig", `${sig.slice(0, -2)}${sig.at(-2) === "A" ? "B" : "A"}${sig.slice(-1)}`);
    variants.push(tampered);
    // The last character carries 2 spare bits: its 3 other spellings decode to the same MAC
    // bytes under a lax decoder, and are refused too.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(sig.at(-1) ?? "");
    expect(last % 4).toBe(0);
    for (const c of alphabet.slice(last + 1, last + 4)) {
      const respelled = new URL(link);
      respelled.searchParams.set("sig", `${sig.slice(0, -1)}${c}`);
      variants.push(respelled);
    }
    const otherNs = new URL(link);
    otherNs.searchParams.set("ns", "links-c");
    variants.push(otherNs);
    const otherBlob = new URL(link);
    otherBlob.pathname = `/blobs/${b.digest}`;
    variants.push(otherBlob);
    const later = new URL(link);
    later.searchParams.set("exp", String(Number(link.searchParams.get("exp")) + 3600));
    variants.push(later);
    const noExp = new URL(link);
    noExp.searchParams.delete("exp");
    variants.push(noExp);
    for (const variant of variants) await expectForbidden(await get(variant.toString()));

    const expired = await signBlobUrl(SECRET, { baseUrl: BASE, namespace: "links-b", digest: a.digest, ttl: 60, now: Date.now() - 120_000 });
    await expectForbidden(await get(expired));
    // A token in Authorization does not rescue a bad link: the link is checked on its own.
    await expectForbidden(await get(tampered.toString(), { headers: auth(a.token) }));
    // A foreign secret's link.
    await expectForbidden(await get(await signBlobUrl("another-secret", { baseUrl: BASE, namespace: "links-b", digest: a.digest })));
  });

  test("signBlobUrl from a backend mints a link the edge accepts; a valid link to a blob not linked in its namespace is 404", async () => {
    const { data, digest } = await finished("links-d", 173);
    const link = await signBlobUrl(SECRET, { baseUrl: `${BASE}/`, namespace: "links-d", digest });
    expect(link.startsWith(`${BASE}/blobs/${digest}?`)).toBe(true);
    const res = await get(link);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(data);
    const elsewhere = await get(await signBlobUrl(SECRET, { baseUrl: BASE, namespace: "links-e", digest }));
    expect(elsewhere.status).toBe(404);
    expect(((await elsewhere.json()) as { code: string }).code).toBe("BLOB_UNKNOWN");
  });

  test("anonymous uploads (ALLOW_ANONYMOUS) get links too; a worker without UPLOAD_SECRET mints none and refuses every link", async () => {
    const { res, data } = await finished(undefined, 174);
    const link = res.headers.get("upload-blob-url") ?? "";
    expect(link).toContain("ns=anonymous");
    const body = await get(link);
    expect(new Uint8Array(await body.arrayBuffer())).toEqual(data);

    const noSecret = createRoutes({});
    const bare = { ...env, UPLOAD_SECRET: "" };
    const refused = await noSecret.fetch(new Request(new URL(link, BASE)), bare);
    expect(refused.status).toBe(403);
    const location = res.headers.get("content-location") ?? "";
    const plain = await noSecret.fetch(new Request(new URL(location, BASE)), bare);
    expect(plain.status).toBe(200); // an anonymous read of an anonymous blob still works
    await plain.arrayBuffer();
    // A zero-length upload is finished at creation: its answer has the blob, but no link to it.
    const empty = await noSecret.fetch(new Request(`${BASE}/files`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "0" } }), bare);
    expect(empty.status).toBe(201);
    expect(empty.headers.get("content-location")).toMatch(/^\/blobs\/sha256:/);
    expect(empty.headers.has("upload-blob-url")).toBe(false);
  });
});
