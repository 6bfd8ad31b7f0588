/**
 * The host Worker's side of the UPLOAD_EVENTS queue: a `queue()` handler that hands each
 * `upload.completed` message to the host's handler (the same signature as createUploadApp's
 * `onUploadComplete`) and acks or retries each message on its own, so one failing upload does not
 * redeliver the batch's others.
 *
 * ```ts
 * const onUploadComplete: UploadCompleteHandler = async (event, env) => { await record(event) };
 * export default { fetch: app.fetch, queue: createUploadEventConsumer(onUploadComplete) };
 * ```
 */
import type { Env } from "./env.ts";
import { isUploadCompletedEvent, type UploadCompletedEvent } from "./events.ts";
import { eventRetryDelay } from "./upload/record.ts";
import { objectOptions, type UploadCompleteHandler } from "./upload-options.ts";

export interface UploadEventConsumerOptions {
  /**
   * Seconds before a message whose handler threw is delivered again, given its attempts so far
   * (1 on the first delivery). Default: the edge's own event backoff, 5 s doubling up to 10 min.
   * The queue's `max_retries` (and dead letter queue) in wrangler.jsonc bounds the attempts.
   */
  retryDelaySeconds?: (attempts: number) => number;
  /**
   * A message that is not an `upload.completed` event (another producer on the same queue, a
   * hand-sent test message). Default: logged and acked, since no redelivery can fix its shape.
   * Call `message.retry()` here to keep it instead.
   */
  onInvalidMessage?: (message: Message<unknown>) => void;
}

/** What `createUploadEventConsumer` returns: a modules-format `queue()` handler. */
export type UploadEventQueueHandler = (batch: MessageBatch<unknown>, env: object, ctx: ExecutionContext) => Promise<void>;

/**
 * A `queue()` handler for the UPLOAD_EVENTS queue that calls `onUploadComplete(event, env, ctx)`
 * for each message, at least once per finished upload (the edge may send an event twice, and a
 * retried message arrives again): key your work by `eventKey(event)` or `event.id`. A message is
 * acked once its call returns, and retried with backoff when it throws. `env` is the Worker's env
 * under the edge's binding names (createUploadApp's `bindings`, when this module registered any),
 * as the Durable Object gives it to the hook.
 *
 * Pass the handler here or to createUploadApp's `onUploadComplete`, not both: each path delivers
 * every event, so both would call it twice per upload.
 */
export function createUploadEventConsumer(onUploadComplete: UploadCompleteHandler, options: UploadEventConsumerOptions = {}): UploadEventQueueHandler {
  const delay = options.retryDelaySeconds ?? ((attempts: number) => Math.round(eventRetryDelay(attempts) / 1000));
  const invalid =
    options.onInvalidMessage ??
    ((message: Message<unknown>) => {
      console.warn(`edge-upload: queue message ${message.id} is not an upload.completed event; acked and dropped`);
      message.ack();
    });
  return async (batch, env, ctx) => {
    const view = objectOptions().resolve(env);
    await Promise.all(batch.messages.map((message) => consume(message, view, ctx, onUploadComplete, delay, invalid)));
  };
}

async function consume(
  message: Message<unknown>,
  env: Env,
  ctx: ExecutionContext,
  handler: UploadCompleteHandler,
  delay: (attempts: number) => number,
  invalid: (message: Message<unknown>) => void,
): Promise<void> {
  const body: unknown = message.body;
  if (!isUploadCompletedEvent(body)) {
    invalid(message);
    return;
  }
  const event: UploadCompletedEvent = body;
  try {
    await handler(event, env, ctx);
    message.ack();
  } catch (error) {
    console.warn(`edge-upload: onUploadComplete threw for ${event.id} (attempt ${message.attempts}): ${String(error)}`);
    message.retry({ delaySeconds: delay(message.attempts) });
  }
}
