/**
 * edge-upload/server in Node (issue 16): the tokens, links and webhook checks a host backend uses
 * are the formats the edge verifies and emits (edge/http/auth.ts, edge/blob-url.ts, edge/events.ts).
 */
import { describe, expect, test } from "vitest";
import { verifyToken } from "../../edge/http/auth.ts";
import { verifyBlobUrl } from "../../edge/blob-url.ts";
import { webhookHeaders } from "../../edge/events.ts";
import { WebhookVerificationError, eventKey, signBlobUrl, signToken, verifyWebhook, type UploadCompletedEvent } from "../../edge/server.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const EVENT: UploadCompletedEvent = {
  type: "upload.completed",
  id: "f".repeat(64),
  namespace: "team-a",
  digest: DIGEST,
  size: 42,
  metadata: { filename: "a.txt" },
  finishedAt: "2026-12-01T10:00:00.000Z",
};

describe("signToken", () => {
  test("mints the edge's token for a namespace with a ttl (default 1 h); refuses namespaces the edge would refuse", async () => {
    const now = Date.now();
    const token = await signToken("s3cret", { namespace: "team-a/project", ttl: 120, now });
    const result = await verifyToken("s3cret", token, Math.floor(now / 1000));
    expect(result).toEqual({ ok: true, payload: { ns: "team-a/project", exp: Math.floor(now / 1000) + 120 } });
    const fallback = await verifyToken("s3cret", await signToken("s3cret", { namespace: "team-a", now }), Math.floor(now / 1000));
    expect(fallback.ok && fallback.payload.exp).toBe(Math.floor(now / 1000) + 3600);
    expect((await verifyToken("other", token, Math.floor(now / 1000))).ok).toBe(false);
    await expect(signToken("s3cret", { namespace: "Team/../x" })).rejects.toThrow(RangeError);
    await expect(signToken("s3cret", { namespace: "team-a", ttl: 0 })).rejects.toThrow(RangeError);
  });
});

describe("signBlobUrl", () => {
  test("builds <baseUrl>/blobs/<digest>?ns&exp&sig that the edge's check accepts until exp, for that blob and namespace only", async () => {
    const now = 1_800_000_000_000;
    const link = new URL(await signBlobUrl("s3cret", { baseUrl: "https://api.example.com/uploads/", namespace: "team-a", digest: DIGEST, ttl: 60, now }));
    expect(`${link.origin}${link.pathname}`).toBe(`https://api.example.com/uploads/blobs/${DIGEST}`);
    const params = {
      ns: link.searchParams.get("ns") ?? undefined,
      exp: link.searchParams.get("exp") ?? undefined,
      sig: link.searchParams.get("sig") ?? undefined,
    };
    expect(params.exp).toBe(String(now / 1000 + 60));
    expect(await verifyBlobUrl("s3cret", DIGEST, params, now / 1000)).toEqual({ ok: true, namespace: "team-a" });
    expect(await verifyBlobUrl("s3cret", DIGEST, params, now / 1000 + 60)).toEqual({ ok: false, problem: "expired" });
    expect(await verifyBlobUrl("s3cret", `sha256:${"cd".repeat(32)}`, params, now / 1000)).toEqual({ ok: false, problem: "bad-signature" });
    expect(await verifyBlobUrl("s3cret", DIGEST, { ...params, ns: "team-b" }, now / 1000)).toEqual({ ok: false, problem: "bad-signature" });
    expect(await verifyBlobUrl("other", DIGEST, params, now / 1000)).toEqual({ ok: false, problem: "bad-signature" });
    await expect(signBlobUrl("s3cret", { baseUrl: "https://x", namespace: "team-a", digest: "sha256:nothex" })).rejects.toThrow(RangeError);
  });
});

describe("verifyWebhook", () => {
  const body = JSON.stringify(EVENT);
  const now = 1_800_000_000;

  for (const secret of [`whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`, "a plain secret"]) {
    test(`accepts the edge's signature and returns the event (secret ${secret.startsWith("whsec_") ? "whsec_ base64" : "plain"})`, async () => {
      const headers = await webhookHeaders(secret, eventKey(EVENT), now, body);
      expect(headers["webhook-id"]).toBe(`upload.completed:${EVENT.id}`);
      expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(await verifyWebhook(secret, new Headers(headers), body, { nowSeconds: now })).toEqual(EVENT);
      // Node's IncomingHttpHeaders shape, and a rotated secret's extra signature in the list.
      const rotated = { ...headers, "webhook-signature": `v1,${Buffer.alloc(32).toString("base64")} ${headers["webhook-signature"]}` };
      expect(await verifyWebhook(secret, rotated, body, { nowSeconds: now })).toEqual(EVENT);
    });
  }

  test("throws WebhookVerificationError for a changed body, id or timestamp, another secret, a stale delivery, missing headers", async () => {
    const secret = "s3cret";
    const headers = await webhookHeaders(secret, eventKey(EVENT), now, body);
    const cases: [Record<string, string>, string, number][] = [
      [headers, body.replace('"size":42', '"size":43'), now],
      [{ ...headers, "webhook-id": "upload.completed:other" }, body, now],
      [{ ...headers, "webhook-timestamp": String(now + 1) }, body, now],
      [await webhookHeaders("other", eventKey(EVENT), now, body), body, now],
      [headers, body, now + 301],
      [{ "webhook-id": headers["webhook-id"] ?? "" }, body, now],
    ];
    for (const [h, b, at] of cases) await expect(verifyWebhook(secret, h, b, { nowSeconds: at })).rejects.toBeInstanceOf(WebhookVerificationError);
    // Signed correctly but not an upload.completed event under its own key.
    const other = JSON.stringify({ ...EVENT, type: "something.else" });
    await expect(verifyWebhook(secret, await webhookHeaders(secret, eventKey(EVENT), now, other), other, { nowSeconds: now })).rejects.toThrow(
      /not an upload.completed/,
    );
  });
});
