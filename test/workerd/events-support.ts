/**
 * Reading what test/support/event-sink.mjs received (the queue consumer and webhook receiver of
 * the workerd project, vitest.config.ts), and the upload object's record, for the event tests.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import type { SessionRecord } from "../../edge/upload/record.ts";
import type { UploadCompletedEvent } from "../../edge/events.ts";
import { stubOf } from "./http-support.ts";

declare global {
  namespace Cloudflare {
    interface Env {
      /** test/support/event-sink.mjs */
      EVENT_SINK: Fetcher;
    }
  }
}

/** WEBHOOK_SECRET of the workerd project (vitest.config.ts). */
export const WEBHOOK_SECRET = `whsec_${btoa("edge-upload webhook test secret")}`;

export interface SinkView {
  queue: { id: string; body: UploadCompletedEvent; attempts: number }[];
  webhook: { id: string; status: number; headers: Record<string, string>; body: string }[];
}

export async function sink(id: string): Promise<SinkView> {
  return (await env.EVENT_SINK.fetch(`https://sink/events?id=${id}`)).json<SinkView>();
}

/** Makes the webhook receiver answer 503 to the next `count` deliveries for upload `id`. */
export async function failWebhook(id: string, count: number): Promise<void> {
  await env.EVENT_SINK.fetch(`https://sink/fail?id=${id}&count=${count}`);
}

export function recordOf(id: string): Promise<SessionRecord | undefined> {
  return runInDurableObject(stubOf(id), (_instance, state) => state.storage.get<SessionRecord>("upload"));
}

/**
 * Runs the upload object's alarm (the events' only sender) until `done` holds for what the sink
 * received, polling between runs: queue messages reach their consumer asynchronously. Throws
 * when it never does.
 */
export async function driveEvents(id: string, done: (view: SinkView) => boolean, rounds = 100): Promise<SinkView> {
  for (let i = 0; i < rounds; i++) {
    const view = await sink(id);
    if (done(view)) return view;
    if ((await recordOf(id))?.events) await runDurableObjectAlarm(stubOf(id));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`events of upload ${id} never reached the sink as expected: ${JSON.stringify(await sink(id))}`);
}
