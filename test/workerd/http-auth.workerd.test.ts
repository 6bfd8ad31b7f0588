import { SELF, env } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { app } from "../../edge/http/app.ts";
import { signToken } from "../../edge/http/auth.ts";
import { BASE, MiB, SECRET, auth, create, getBlob, head, offsetOf, patch, seeded, sha256, tokenFor, upload } from "./http-support.ts";

/**
 * Flips the MAC's second-to-last base64url character (a full 6 bits of the MAC; the last one
 * carries padding bits). It must differ from the one it replaces: comparing the last character
 * instead left the token unchanged whenever the replaced one was already "A" (1 run in 64).
 */
function tamper(token: string): string {
  const [body = "", mac = ""] = token.split(".");
  const replaced = mac.at(-2);
  return `${body}.${mac.slice(0, -2)}${replaced === "A" ? "B" : "A"}${mac.slice(-1)}`;
}

describe("bearer tokens", () => {
  test("missing (when anonymous is off), expired, tampered or foreign-signed tokens -> 401 with WWW-Authenticate: Bearer", async () => {
    const good = await tokenFor("team-a");
    const expired = await signToken(SECRET, { ns: "team-a", exp: Math.floor(Date.now() / 1000) - 1 });
    const foreign = await signToken("another-secret", { ns: "team-a", exp: Math.floor(Date.now() / 1000) + 60 });
    const swapped = `${(await tokenFor("team-b")).split(".")[0]}.${good.split(".")[1]}`;
    expect(tamper(good)).not.toBe(good);
    expect(tamper("e30.xxAx")).toBe("e30.xxBx");
    for (const token of [expired, tamper(good), foreign, swapped, "not-a-token", `${good}.x`]) {
      const res = await SELF.fetch(`${BASE}/files`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "1", ...auth(token) } });
      expect(res.status, token).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(((await res.json()) as { code: string }).code).toBe("UNAUTHORIZED");
    }
    const noAnon = { ...env, ALLOW_ANONYMOUS: "false" };
    const res = await app.fetch(new Request(`${BASE}/files`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "1" } }), noAnon);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  test("a token for a namespace outside the grammar (escape attempts, upper case) -> 401", async () => {
    for (const ns of ["../b", "a/../b", "A", "a//b", "a%2Fb", "", "x".repeat(256)]) {
      const token = await signToken(SECRET, { ns, exp: Math.floor(Date.now() / 1000) + 60 });
      const res = await SELF.fetch(`${BASE}/files`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "1", ...auth(token) } });
      expect(res.status, ns).toBe(401);
    }
  });

  test("a worker with neither UPLOAD_SECRET nor ALLOW_ANONYMOUS refuses with 503 NOT_CONFIGURED and says why", async () => {
    const bare = { ...env, ALLOW_ANONYMOUS: "false", UPLOAD_SECRET: "" };
    const res = await app.fetch(new Request(`${BASE}/files`, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "1" } }), bare);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("NOT_CONFIGURED");
    expect(body.message).toContain("UPLOAD_SECRET");
    expect(body.message).toContain("ALLOW_ANONYMOUS");
  });

  test("an invalid config var fails loudly: 500 CONFIG_INVALID naming the var", async () => {
    for (const [name, value] of [
      ["PART_SIZE", "8MB"],
      ["PART_SIZE", "1024"],
      ["MAX_PATCH_SIZE", "-1"],
      ["UPLOAD_TTL_SECONDS", "soon"],
      ["TUS_MAX_SIZE", "1e9"],
      ["ALLOW_ANONYMOUS", "yes"],
    ] as const) {
      const res = await app.fetch(new Request(`${BASE}/files`, { method: "OPTIONS" }), { ...env, [name]: value });
      expect(res.status, name).toBe(500);
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe("CONFIG_INVALID");
      expect(body.message).toContain(name);
    }
  });
});

describe("namespaces are isolated: another namespace's upload or blob is a 404", () => {
  test("a token for A cannot see, resume, finish or delete B's upload, nor read B's blob", async () => {
    const a = await tokenFor("team-a");
    const b = await tokenFor("team-b/project");
    const data = seeded(MiB + 3, 31);
    const digest = await sha256(data);
    const { url } = await create({ length: data.length, token: b });
    expect((await patch(url, 0, data.subarray(0, MiB), { token: b })).status).toBe(204);

    expect((await head(url, a)).status).toBe(404);
    expect((await head(url)).status).toBe(404); // anonymous is another namespace too
    const resume = await patch(url, MiB, data.subarray(MiB), { token: a });
    expect(resume.status).toBe(404);
    expect(((await resume.json()) as { code: string }).code).toBe("UPLOAD_UNKNOWN");
    const del = await SELF.fetch(url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0", ...auth(a) } });
    expect(del.status).toBe(404);
    expect(await offsetOf(url, b)).toBe(MiB);

    const done = await patch(url, MiB, data.subarray(MiB), { token: b });
    expect(done.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect((await getBlob(`/blobs/${digest}`, b)).status).toBe(200);
    const foreign = await getBlob(`/blobs/${digest}`, a);
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as { code: string }).code).toBe("BLOB_UNKNOWN");
    expect((await SELF.fetch(`${BASE}/blobs/${digest}`, { method: "HEAD", headers: auth(a) })).status).toBe(404);
    expect((await head(url, a)).status).toBe(404);

    // Declaring B's digest from A is no shortcut: A must send the bytes.
    const claim = await create({ length: data.length, token: a, metadata: { digest } });
    expect(claim.res.headers.get("upload-offset")).toBe("0");
    const own = await upload(claim.url, data, MiB, a);
    expect(own.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect((await getBlob(`/blobs/${digest}`, a)).status).toBe(200);
  });
});
