/**
 * Completion events (issue 16): each finished upload's `upload.completed` event reaches the
 * UPLOAD_EVENTS queue's consumer and the WEBHOOK_URL, at least once, under one idempotency key,
 * with a valid Standard Webhooks signature; a receiver that fails gets it again from the upload
 * object's alarm, and neither a restart of the object nor a DELETE right after the finish loses it.
 */
import { SELF, env, runInDurableObject } from "cloudflare:test";
import { app } from "../../edge/http/app.ts";
import { describe, expect, test } from "vitest";
import { verifyWebhook, WebhookVerificationError } from "../../edge/server.ts";
import { eventRetryDelay } from "../../edge/upload/record.ts";
import { BASE, auth, create, seeded, sha256, stubOf, tokenFor, upload } from "./http-support.ts";
import { WEBHOOK_SECRET, driveEvents, failWebhook, recordOf, sink } from "./events-support.ts";

const SIZE = 1000;

describe("completion events", () => {
  test("the queue consumer receives one event per finished upload (a dedupe at creation is a finish too), with the upload's fields", async () => {
    const token = await tokenFor("events-queue");
    const data = seeded(SIZE, 160);
    const digest = await sha256(data);
    const first = await create({ length: SIZE, token, metadata: { filename: "report.pdf", filetype: "application/pdf" } });
    expect(first.res.status).toBe(201);
    await upload(first.url, data, SIZE, token);
    const again = await create({ length: SIZE, token, metadata: { digest } });
    expect(again.res.headers.get("upload-offset")).toBe(String(SIZE)); // finished at creation

    for (const { id, metadata } of [
      { id: first.id, metadata: { filename: "report.pdf", filetype: "application/pdf" } },
      { id: again.id, metadata: { digest } },
    ]) {
      const view = await driveEvents(id, (v) => v.queue.length > 0 && v.webhook.some((w) => w.status < 300));
      // Nothing is owed any more, so nothing will be sent again: exactly one message.
      expect((await recordOf(id))?.events).toBeUndefined();
      expect((await sink(id)).queue).toHaveLength(1);
      const event = view.queue[0]?.body;
      expect(event).toMatchObject({ type: "upload.completed", id, namespace: "events-queue", digest, size: SIZE, metadata });
      expect(new Date(event?.finishedAt ?? "").toISOString()).toBe(event?.finishedAt);
    }
  });

  test("a webhook that fails its first attempts gets the event from the alarm's retries, signed, with one webhook-id; a restart in between loses nothing", async () => {
    const token = await tokenFor("events-webhook");
    const data = seeded(SIZE, 161);
    const { url, id } = await create({ length: SIZE, token, metadata: { filename: "a.bin" } });
    await failWebhook(id, 2);
    await upload(url, data, SIZE, token);

    // Recorded as owed with the finish, before any attempt could succeed.
    const owed = await recordOf(id);
    expect(owed?.finished?.digest).toBe(await sha256(data));
    expect(owed?.events?.pending).toContain("webhook");

    await driveEvents(id, (v) => v.webhook.length >= 1);
    // After a failed attempt the alarm waits before the next one (backoff), and the event stays owed.
    const afterFailure = await runInDurableObject(stubOf(id), async (_instance, state) => ({
      alarm: await state.storage.getAlarm(),
      record: await state.storage.get<{ events?: { attempts: number } }>("upload"),
    }));
    expect(afterFailure.record?.events?.attempts).toBeGreaterThanOrEqual(1);
    expect(afterFailure.alarm).toBeGreaterThan(Date.now() + eventRetryDelay(1) / 2);

    // A restart: the object's session (its memory) is dropped, only its storage is left.
    await runInDurableObject(stubOf(id), (instance) => instance.useDriver(undefined));

    const view = await driveEvents(id, (v) => v.webhook.some((w) => w.status < 300));
    expect(view.webhook.map((w) => w.status)).toEqual([503, 503, 204]);
    expect(new Set(view.webhook.map((w) => w.headers["webhook-id"]))).toEqual(new Set([`upload.completed:${id}`]));
    expect(new Set(view.webhook.map((w) => w.body)).size).toBe(1);
    const delivered = view.webhook[2];
    if (!delivered) throw new Error("no delivery");
    const event = await verifyWebhook(WEBHOOK_SECRET, delivered.headers, delivered.body);
    expect(event).toMatchObject({ type: "upload.completed", id, namespace: "events-webhook", size: SIZE, metadata: { filename: "a.bin" } });
    await expect(verifyWebhook(WEBHOOK_SECRET, delivered.headers, delivered.body.replace(`"size":${SIZE}`, `"size":${SIZE + 1}`))).rejects.toBeInstanceOf(
      WebhookVerificationError,
    );
    await expect(verifyWebhook(`whsec_${btoa("another secret")}`, delivered.headers, delivered.body)).rejects.toBeInstanceOf(WebhookVerificationError);
    expect((await recordOf(id))?.events).toBeUndefined();
  });

  test("a DELETE right after the finish answers as usual but does not cancel the owed event", async () => {
    const token = await tokenFor("events-delete");
    const data = seeded(SIZE, 162);
    const { url, id } = await create({ length: SIZE, token });
    await failWebhook(id, 1);
    await upload(url, data, SIZE, token);
    const del = await SELF.fetch(url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0", ...auth(token) } });
    expect(del.status).toBe(204);
    const gone = await SELF.fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", ...auth(token) } });
    expect(gone.status).toBe(404);
    const view = await driveEvents(id, (v) => v.webhook.some((w) => w.status < 300) && v.queue.length > 0);
    expect(view.webhook.at(-1)?.headers["webhook-id"]).toBe(`upload.completed:${id}`);
    // Delivered: the record, kept only for the event, is gone now.
    expect(await recordOf(id)).toBeUndefined();
  });
});

test("WEBHOOK_URL without WEBHOOK_SECRET, a malformed URL or whsec_ secret, or a bad BLOB_URL_TTL_SECONDS: 500 CONFIG_INVALID naming the var", async () => {
  for (const [vars, named] of [
    [{ WEBHOOK_SECRET: "" }, "WEBHOOK_SECRET"],
    [{ WEBHOOK_URL: "webhook.test/hook" }, "WEBHOOK_URL"],
    [{ WEBHOOK_SECRET: "whsec_***" }, "WEBHOOK_SECRET"],
    [{ BLOB_URL_TTL_SECONDS: "1h" }, "BLOB_URL_TTL_SECONDS"],
  ] as const) {
    const res = await app.fetch(new Request(`${BASE}/files`, { method: "OPTIONS" }), { ...env, ...vars });
    expect(res.status, named).toBe(500);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("CONFIG_INVALID");
    expect(body.message).toContain(named);
  }
});
