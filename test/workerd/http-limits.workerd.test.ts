/**
 * Abuse limits per namespace (issue 14): open uploads and the bytes they add up to. Over a limit
 * POST /files is 429 RATE_LIMITED with Retry-After and nothing else changes; a slot frees when an
 * upload is finished, cancelled or expires.
 *
 * Releasing at finish, cancel and expiry happens in the upload's Durable Object, which calls
 * releaseReservation. Where these tests finish or delete an upload they also call it directly,
 * as that object would; it is idempotent, so this stays right once the object calls it itself.
 */
import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { app } from "../../edge/http/app.ts";
import type { Env } from "../../edge/env.ts";
import { releaseReservation, type NamespaceObject } from "../../edge/namespace-limits.ts";
import { formatUploadMetadata } from "../../shared/protocol.ts";
import { BASE, auth, create, errorCode, patch, seeded, sha256, tokenFor } from "./http-support.ts";

const GiB = 1024 * 1024 * 1024;

function namespaces(): DurableObjectNamespace {
  if (!env.NAMESPACES) throw new Error("the NAMESPACES binding is missing (wrangler.jsonc)");
  return env.NAMESPACES;
}

function limitsOf(ns: string): DurableObjectStub<NamespaceObject> {
  return namespaces().get(namespaces().idFromName(ns)) as DurableObjectStub<NamespaceObject>;
}

async function expectRateLimited(res: Response, limit: "open-uploads" | "open-bytes"): Promise<void> {
  expect(res.status).toBe(429);
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  const body = (await res.json()) as { code: string; limit: string };
  expect(body).toMatchObject({ code: "RATE_LIMITED", limit });
}

/** Creates `count` uploads of `length` bytes in the token's namespace, ten at a time; returns their URLs. */
async function createMany(count: number, length: number, token: string): Promise<{ url: string; id: string }[]> {
  const out: { url: string; id: string }[] = [];
  for (let i = 0; i < count; i += 10) {
    const batch = await Promise.all(Array.from({ length: Math.min(10, count - i) }, () => create({ length, token })));
    for (const { res, url, id } of batch) {
      expect(res.status).toBe(201);
      out.push({ url, id });
    }
  }
  return out;
}

describe("open uploads per namespace (MAX_OPEN_UPLOADS_PER_NAMESPACE, default 100)", () => {
  test("the 101st open upload is 429 with Retry-After; existing uploads go on, other namespaces are unaffected; finishing or deleting one frees a slot", async () => {
    const ns = "limits-count";
    const token = await tokenFor(ns);
    const open = await createMany(100, 10, token);
    expect(await limitsOf(ns).usage()).toEqual({ uploads: 100, bytes: 1000 });

    await expectRateLimited((await create({ length: 10, token })).res, "open-uploads");
    // Refused means refused: nothing was counted for it.
    expect(await limitsOf(ns).usage()).toEqual({ uploads: 100, bytes: 1000 });
    expect((await create({ length: 10, token: await tokenFor("limits-count-other") })).res.status).toBe(201);

    // Nothing lost: an existing upload still takes its bytes and finishes.
    const [first, second] = open;
    if (!first || !second) throw new Error("uploads missing");
    const data = seeded(10, 1);
    const done = await patch(first.url, 0, data, { token });
    expect(done.status).toBe(204);
    expect(done.headers.get("content-location")).toBe(`/blobs/${await sha256(data)}`);
    await releaseReservation(env, ns, first.id);
    expect((await create({ length: 10, token })).res.status).toBe(201);
    await expectRateLimited((await create({ length: 10, token })).res, "open-uploads");

    const deleted = await SELF.fetch(second.url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0", ...auth(token) } });
    expect(deleted.status).toBe(204);
    await releaseReservation(env, ns, second.id);
    expect((await create({ length: 10, token })).res.status).toBe(201);
    await expectRateLimited((await create({ length: 10, token })).res, "open-uploads");
  });

  test("uploads finished at creation (whole body in the POST, dedupe, zero length) and failed creations take no slot", async () => {
    const ns = "limits-creation";
    const token = await tokenFor(ns);
    const data = seeded(100, 2);
    const digest = await sha256(data);
    const whole = await create({ length: data.length, token, body: data });
    expect(whole.res.status).toBe(201);
    expect(whole.res.headers.get("content-location")).toBe(`/blobs/${digest}`);
    expect(await limitsOf(ns).usage()).toEqual({ uploads: 0, bytes: 0 });

    const dedupe = await create({ length: data.length, token, metadata: { digest } });
    expect(dedupe.res.headers.get("upload-offset")).toBe(String(data.length));
    expect((await create({ length: 0, token })).res.status).toBe(201);
    expect(await limitsOf(ns).usage()).toEqual({ uploads: 0, bytes: 0 });

    // The blob exists with another length: the creation fails and its reservation is released.
    const conflicting = await create({ length: data.length + 1, token, metadata: { digest } });
    expect(conflicting.res.status).toBe(400);
    expect(await errorCode(conflicting.res)).toBe("DIGEST_INVALID");
    expect(await limitsOf(ns).usage()).toEqual({ uploads: 0, bytes: 0 });

    expect((await create({ length: 5, token })).res.status).toBe(201);
    expect(await limitsOf(ns).usage()).toEqual({ uploads: 1, bytes: 5 });
  });
});

describe("open bytes per namespace (MAX_OPEN_BYTES_PER_NAMESPACE, default 1 TiB)", () => {
  test("16 open uploads of 64 GiB fill 1 TiB: one more byte is 429, another namespace is unaffected, deleting one frees its bytes", async () => {
    const ns = "limits-bytes";
    const token = await tokenFor(ns);
    const open = await createMany(16, 64 * GiB, token);
    expect(await limitsOf(ns).usage()).toEqual({ uploads: 16, bytes: 1024 * GiB });
    await expectRateLimited((await create({ length: 1, token })).res, "open-bytes");
    expect((await create({ length: 64 * GiB, token: await tokenFor("limits-bytes-other") })).res.status).toBe(201);

    const [first] = open;
    if (!first) throw new Error("uploads missing");
    expect((await SELF.fetch(first.url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0", ...auth(token) } })).status).toBe(204);
    await releaseReservation(env, ns, first.id);
    expect((await create({ length: 64 * GiB, token })).res.status).toBe(201);
    await expectRateLimited((await create({ length: 1, token })).res, "open-bytes");
  });
});

describe("limits from config", () => {
  /** The app with other vars, over the same bindings (so the same NamespaceObjects). */
  function withVars(vars: Partial<Env>): (length: number, token: string) => Promise<Response> {
    const custom: Env = { ...env, ...vars };
    return async (length, token) =>
      await app.request(
        `${BASE}/files`,
        {
          method: "POST",
          headers: { "Tus-Resumable": "1.0.0", "Upload-Length": String(length), "Upload-Metadata": formatUploadMetadata({ filename: "x" }), ...auth(token) },
        },
        custom,
      );
  }

  test("MAX_OPEN_UPLOADS_PER_NAMESPACE and MAX_OPEN_BYTES_PER_NAMESPACE are honoured; an upload larger than the bytes limit is 413, not 429", async () => {
    const post = withVars({ MAX_OPEN_UPLOADS_PER_NAMESPACE: "2", MAX_OPEN_BYTES_PER_NAMESPACE: "100" });
    const a = await tokenFor("limits-config-a");
    expect((await post(10, a)).status).toBe(201);
    expect((await post(10, a)).status).toBe(201);
    await expectRateLimited(await post(10, a), "open-uploads");

    const b = await tokenFor("limits-config-b");
    expect((await post(60, b)).status).toBe(201);
    await expectRateLimited(await post(41, b), "open-bytes");
    expect((await post(40, b)).status).toBe(201);

    const tooLarge = await post(101, await tokenFor("limits-config-c"));
    expect(tooLarge.status).toBe(413);
    expect(await errorCode(tooLarge)).toBe("UPLOAD_TOO_LARGE");
  });

  test("a limit var that does not parse is 500 CONFIG_INVALID naming it", async () => {
    for (const name of ["MAX_OPEN_UPLOADS_PER_NAMESPACE", "MAX_OPEN_BYTES_PER_NAMESPACE"] as const) {
      const res = await withVars({ [name]: "lots" })(1, await tokenFor("limits-config-bad"));
      expect(res.status).toBe(500);
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe("CONFIG_INVALID");
      expect(body.message).toContain(name);
    }
  });
});

describe("NamespaceObject reservations", () => {
  const limits = { maxOpenUploads: 1, maxOpenBytes: 1000 };

  test("reserve and release are idempotent by upload id", async () => {
    const stub = limitsOf("limits-object-idempotent");
    const expiresAt = Date.now() + 3600_000;
    expect(await stub.reserve("a", 10, expiresAt, limits)).toEqual({ ok: true });
    // A retried creation is not a second upload, even at the limit.
    expect(await stub.reserve("a", 10, expiresAt, limits)).toEqual({ ok: true });
    expect(await stub.usage()).toEqual({ uploads: 1, bytes: 10 });
    expect(await stub.reserve("b", 10, expiresAt, limits)).toMatchObject({ ok: false, reason: "open-uploads" });
    expect(await stub.release("a")).toBe(true);
    expect(await stub.release("a")).toBe(false);
    expect(await stub.reserve("b", 10, expiresAt, limits)).toEqual({ ok: true });
  });

  test("a reservation past its expiry is dropped, so a release that never came cannot block for good", async () => {
    const stub = limitsOf("limits-object-expiry");
    const start = Date.now();
    await runInDurableObject(stub, (instance: NamespaceObject) => {
      instance.now = () => start;
      expect(instance.reserve("leaked", 10, start + 1500, limits)).toEqual({ ok: true });
      // Retry-After: when the oldest reservation expires, in whole seconds, at most a minute.
      expect(instance.reserve("next", 10, start + 3600_000, limits)).toEqual({ ok: false, reason: "open-uploads", retryAfterSeconds: 2 });
      instance.now = () => start + 1500;
      expect(instance.usage()).toEqual({ uploads: 0, bytes: 0 });
      expect(instance.reserve("next", 10, start + 3600_000, limits)).toEqual({ ok: true });
      expect(instance.reserve("third", 10, start + 3600_000, limits)).toEqual({ ok: false, reason: "open-uploads", retryAfterSeconds: 60 });
    });
  });
});
