/**
 * createUploadEventConsumer (edge-upload/worker): the host's `queue()` handler for the
 * UPLOAD_EVENTS queue. The message body is what the queue really delivered (an upload finished
 * here, its event sent by the upload object's alarm and received by the workerd project's queue
 * consumer, test/support/event-sink.mjs); the batch around it is workerd's own MessageBatch
 * (createMessageBatch), whose acks and retries getQueueResult reads back. The full path through a
 * host Worker's own consumer is test/e2e/host-worker-example.e2e.test.ts.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { createUploadEventConsumer, eventKey, type UploadCompletedEvent } from "../../edge/worker.ts";
import { driveEvents } from "./events-support.ts";
import { create, seeded, sha256, tokenFor, upload } from "./http-support.ts";

const SIZE = 1200;

/** One upload finished on the edge, and the event body its queue message carried. */
async function deliveredEvent(ns: string, seed: number): Promise<UploadCompletedEvent> {
  const token = await tokenFor(ns);
  const data = seeded(SIZE, seed);
  const { url, id } = await create({ length: SIZE, token, metadata: { filename: `${ns}.bin` } });
  await upload(url, data, SIZE, token);
  const view = await driveEvents(id, (v) => v.queue.length > 0);
  const body = view.queue[0]?.body;
  if (!body) throw new Error(`no queue message for ${id}`);
  expect(body).toMatchObject({ type: "upload.completed", id, namespace: ns, digest: await sha256(data), size: SIZE });
  return body;
}

const message = (id: string, body: unknown, attempts = 1) => ({ id, timestamp: new Date(), attempts, body });

/**
 * The batch, its messages passing every ack and retry on to workerd's, with the retry delays
 * noted on the way: getQueueResult reports which messages were retried but not their delay.
 */
function noteDelays(batch: MessageBatch<unknown>): { batch: MessageBatch<unknown>; delays: Map<string, number | undefined> } {
  const delays = new Map<string, number | undefined>();
  const messages = batch.messages.map((m) => ({
    id: m.id,
    timestamp: m.timestamp,
    body: m.body,
    attempts: m.attempts,
    ack: () => m.ack(),
    retry: (options?: QueueRetryOptions) => {
      delays.set(m.id, options?.delaySeconds);
      m.retry(options);
    },
  }));
  return { batch: { messages, queue: batch.queue, metadata: batch.metadata, retryAll: (o) => batch.retryAll(o), ackAll: () => batch.ackAll() }, delays };
}

describe("createUploadEventConsumer", () => {
  test("calls the handler with each upload.completed message's event, env and ctx; acks each that returned, retries with backoff each that threw, acks and skips a foreign message", async () => {
    const ok = await deliveredEvent("consumer-ok", 190);
    const failing = await deliveredEvent("consumer-fail", 191);
    const calls: { event: UploadCompletedEvent; hasBucket: boolean }[] = [];
    let waited = false;
    const queue = createUploadEventConsumer((event, handlerEnv, ctx) => {
      calls.push({ event, hasBucket: handlerEnv.BUCKET !== undefined });
      // The context is the queue invocation's: work handed to waitUntil outlives the call.
      ctx.waitUntil(new Promise<void>((resolve) => setTimeout(() => ((waited = true), resolve()), 20)));
      if (event.id === failing.id) throw new Error("host backend down");
    });

    const batch = createMessageBatch("upload-events", [
      message("m-ok", ok),
      message("m-fail", failing),
      message("m-foreign", { type: "something.else", id: "x" }),
    ]);
    const noted = noteDelays(batch);
    const ctx = createExecutionContext();
    await queue(noted.batch, env, ctx);
    const result = await getQueueResult(batch, ctx);

    expect(calls.map((c) => c.event)).toEqual([ok, failing]); // the foreign message reached no handler
    expect(calls.every((c) => c.hasBucket)).toBe(true);
    expect(waited).toBe(true);
    expect(result.ackAll).toBe(false);
    expect(result.retryBatch.retry).toBe(false); // one message failing does not redeliver the others
    expect([...result.explicitAcks].sort()).toEqual(["m-foreign", "m-ok"]);
    expect(result.retryMessages.map((r) => r.msgId)).toEqual(["m-fail"]);
    expect([...noted.delays]).toEqual([["m-fail", 5]]); // the edge's own event backoff: 5 s first

    // The failed one, redelivered: a later attempt waits longer if it fails again, and is acked once the handler returns.
    const again = noteDelays(createMessageBatch("upload-events", [message("m-fail", failing, 3)]));
    await queue(again.batch, env, createExecutionContext());
    expect([...again.delays]).toEqual([["m-fail", 20]]);

    const recovered = createUploadEventConsumer((event) => void calls.push({ event, hasBucket: true }));
    const last = createMessageBatch("upload-events", [message("m-fail", failing, 4)]);
    const ctx3 = createExecutionContext();
    await recovered(last, env, ctx3);
    expect((await getQueueResult(last, ctx3)).explicitAcks).toEqual(["m-fail"]);
    // Every delivery of the upload carries the same idempotency key.
    expect(new Set(calls.filter((c) => c.event.id === failing.id).map((c) => eventKey(c.event)))).toEqual(new Set([`upload.completed:${failing.id}`]));
  });

  test("the retry delay and the handling of foreign messages are the host's to choose", async () => {
    const event = await deliveredEvent("consumer-options", 192);
    const foreign: string[] = [];
    const queue = createUploadEventConsumer(
      () => {
        throw new Error("not yet");
      },
      {
        retryDelaySeconds: (attempts) => attempts * 60,
        onInvalidMessage: (m) => {
          foreign.push(m.id);
          m.retry();
        },
      },
    );
    const batch = createMessageBatch("upload-events", [message("m-1", event, 2), message("m-2", "not an event")]);
    const noted = noteDelays(batch);
    const ctx = createExecutionContext();
    await queue(noted.batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(foreign).toEqual(["m-2"]);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((r) => r.msgId).sort()).toEqual(["m-1", "m-2"]);
    expect(Object.fromEntries(noted.delays)).toEqual({ "m-1": 120, "m-2": undefined });
  });
});
