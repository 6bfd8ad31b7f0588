/**
 * One Durable Object per upload (its id is the upload id): the runtime adapter of
 * edge/upload/session.ts. The object's single-threaded instance and its transactional storage
 * give the session what it needs: one queue per upload (a crashed tab's half-open PATCH and the
 * resumed tab's PATCH never interleave), durable records that survive a restart, and an alarm
 * that drives a finish nobody came back for.
 *
 * Errors are returned as data (Outcome), not thrown: RPC keeps only an Error's message.
 *
 * Completion events (edge/events.ts) leave from here, since the object is where a finish is
 * recorded: the session writes the event as owed with the finish, and the object's alarm
 * delivers it to each target (the UPLOAD_EVENTS queue, the WEBHOOK_URL, the app's
 * onUploadComplete hook registered by createUploadApp, edge/upload-options.ts) until each has
 * taken it.
 */
import { DurableObject } from "cloudflare:workers";
import { getConfig } from "./config.ts";
import type { Env } from "./env.ts";
import { toApiError, type Outcome } from "./http/errors.ts";
import { releaseReservation } from "./namespace-limits.ts";
import type { StorageDriver } from "./storage/driver.ts";
import { driverFor } from "./storage/from-env.ts";
import { UploadSession, type CreateRequest, type UploadStatus, type WriteRequest } from "./upload/session.ts";
import type { EventTarget } from "./upload/record.ts";
import { eventKey, webhookHeaders, type UploadCompletedEvent } from "./events.ts";
import { objectOptions } from "./upload-options.ts";

/** A webhook receiver that neither answers nor fails within this long counts as a failed attempt. */
const WEBHOOK_TIMEOUT_MS = 15_000;

export class UploadObject extends DurableObject<Env> {
  #session: UploadSession | undefined;
  #wrapDriver: ((driver: StorageDriver) => StorageDriver) | undefined;

  /** Clock, replaceable in tests (runInDurableObject) to reach expiry without waiting. */
  now: () => number = () => Date.now();

  /** Built on first use: a bad storage or config var then answers as an error, not a crashed object. */
  get #upload(): UploadSession {
    if (this.#session) return this.#session;
    const { options, resolve } = objectOptions();
    const env = resolve(this.env);
    const config = getConfig(env); // first: it names a bad storage var
    this.#session = new UploadSession({
      driver: this.#wrapDriver ? this.#wrapDriver(driverFor(env)) : driverFor(env),
      storage: this.ctx.storage,
      config,
      now: () => this.now(),
      hooks: {
        // The namespace's limits count open uploads: a finished or removed one frees its slot.
        finished: async (record) => void (await releaseReservation(env, record.namespace, record.id)),
        closed: async (record) => void (await releaseReservation(env, record.namespace, record.id)),
        eventTargets: () => {
          const targets: EventTarget[] = [];
          if (env.UPLOAD_EVENTS) targets.push("queue");
          if (config.webhook) targets.push("webhook");
          if (options.onUploadComplete) targets.push("hook");
          return targets;
        },
        deliver: (target, event) => this.#deliver(env, target, event),
      },
    });
    return this.#session;
  }

  /** One delivery of a completion event; throws unless the target took it (the alarm retries). */
  async #deliver(env: Env, target: EventTarget, event: UploadCompletedEvent): Promise<void> {
    if (target === "queue") {
      if (!env.UPLOAD_EVENTS) throw new Error("the UPLOAD_EVENTS queue binding is gone");
      await env.UPLOAD_EVENTS.send(event, { contentType: "json" });
      return;
    }
    if (target === "webhook") {
      const webhook = getConfig(env).webhook;
      if (!webhook) throw new Error("WEBHOOK_URL is no longer set");
      const body = JSON.stringify(event);
      const headers = await webhookHeaders(webhook.secret, eventKey(event), Math.floor(Date.now() / 1000), body);
      const res = await fetch(webhook.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body,
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      await res.body?.cancel();
      if (res.status < 200 || res.status > 299) throw new Error(`webhook answered ${res.status}`);
      return;
    }
    const hook = objectOptions().options.onUploadComplete;
    if (!hook) throw new Error("no onUploadComplete registered in this isolate (call createUploadApp at the top level of the Worker module)");
    await hook(event, env, { waitUntil: (promise) => this.ctx.waitUntil(promise) });
  }

  /**
   * Test seam (through runInDurableObject), like `now`: runs this upload on a wrapped driver,
   * e.g. edge/storage/faulty.ts, so fault tests reach the real object over HTTP. Drops the
   * session's memory, as a restart would.
   */
  useDriver(wrap: ((driver: StorageDriver) => StorageDriver) | undefined): void {
    this.#wrapDriver = wrap;
    this.#session = undefined;
  }

  create(req: CreateRequest): Promise<Outcome<UploadStatus>> {
    return outcome(() => this.#upload.create(req));
  }

  head(namespace: string): Promise<Outcome<UploadStatus>> {
    return outcome(() => this.#upload.head(namespace));
  }

  patch(namespace: string, req: WriteRequest): Promise<Outcome<UploadStatus>> {
    return outcome(() => this.#upload.patch(namespace, req));
  }

  terminate(namespace: string): Promise<Outcome<null>> {
    return outcome(async () => {
      await this.#upload.terminate(namespace);
      return null;
    });
  }

  /** The scheduled purge's call (edge/purge.ts); throws, the purge counts failures. */
  purge(nowMs: number, found?: { namespace: string; id: string }): Promise<boolean> {
    return this.#upload.purge(nowMs, found);
  }

  override async alarm(): Promise<void> {
    await this.#upload.alarm();
  }
}

async function outcome<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    const error = toApiError(err);
    if (error.status >= 500) console.error("upload object error", err, error.cause);
    return { ok: false, error: error.toData() };
  }
}
