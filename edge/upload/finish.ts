/**
 * The end of an upload, as one recoverable state (docs/http-api.md, "Finishing"): the finish
 * (validate -> move -> link -> record finished -> remove the upload's keys), the finish of an
 * upload whose blob turned out to be linked already, removal (DELETE, expiry), and the alarm that
 * drives whichever of these nobody came back for. Every step is safe to repeat, and `finished` is
 * recorded before anything is removed, so a crash at any point converges on the next request or
 * alarm.
 */
import type { Sha256Digest } from "../../shared/digest.ts";
import { blobMetaFromUploadMetadata, writeBlobMeta } from "../registry/blob-meta.ts";
import { isLinked, removeStaleUploadKeys } from "../registry/blobs.ts";
import { PathNotFoundError, StorageError } from "../storage/driver.ts";
import { bodyChunks } from "../writer/body-chunks.ts";
import { DigestMismatchError, HashStateUnavailableError, resumeUploadWriter, type UploadWriter } from "../writer/index.ts";
import { completionEvent } from "../events.ts";
import type { SessionContext } from "./context.ts";
import { ALARM_MAX_DELAY_MS, ALARM_RETRY_MS, RECORD_KEY, nextAlarm, type EventTarget, type SessionRecord } from "./record.ts";

/**
 * Records the finish on `record` (the caller saves it): the digest, and the completion event
 * owed to each target, in the same write. So the event is recorded before any attempt to send
 * it, and nothing between the finish and a delivery (a crash, an eviction) can lose it.
 */
export function markFinished(ctx: SessionContext, record: SessionRecord, digest: Sha256Digest): void {
  record.finished = { digest, at: ctx.now() };
  const targets = ctx.hooks.eventTargets?.() ?? [];
  if (targets.length > 0) record.events = { pending: targets, attempts: 0 };
}

/**
 * One delivery round of an owed completion event: every target still owed is tried; those that
 * fail stay owed, with the attempt counted for the backoff (record.ts nextAlarm). Never throws:
 * a failing webhook must not stop the alarm's other work. The event is rebuilt from the record,
 * so every attempt sends the same body under the same key.
 */
export async function deliverEvents(ctx: SessionContext, record: SessionRecord): Promise<void> {
  const owed = record.events;
  if (!owed) return;
  const event = completionEvent(record);
  const left: EventTarget[] = [];
  for (const target of owed.pending) {
    try {
      if (!ctx.hooks.deliver) throw new Error("no event deliverer in this session");
      await ctx.hooks.deliver(target, event);
    } catch (err) {
      console.error(`upload ${record.id}: completion event to ${target} failed (attempt ${owed.attempts + 1}); the alarm retries`, err);
      left.push(target);
    }
  }
  if (left.length === 0) delete record.events;
  else record.events = { pending: left, attempts: owed.attempts + 1 };
  await ctx.save(record);
}

/**
 * Dedupe, for a digest declared at creation and one declared mid-upload alike: whether the blob
 * `digest` is linked in the namespace with the upload's length ("duplicate": the upload need not
 * be stored), linked with another length ("other-length": the digest cannot be this upload's), or
 * not linked.
 */
export async function findDuplicate(ctx: SessionContext, namespace: string, digest: Sha256Digest, length: number): Promise<Duplicate> {
  const linked = await isLinked(ctx.driver, namespace, digest);
  if (linked === undefined) return { kind: "none" };
  return linked.size === length ? { kind: "duplicate" } : { kind: "other-length", size: linked.size };
}

export type Duplicate = { kind: "none" } | { kind: "duplicate" } | { kind: "other-length"; size: number };

/**
 * validate -> move -> link -> record finished -> remove. A store fault anywhere leaves the
 * upload "finishing" (the alarm and the next request try again); a removal that fails after
 * the record is written leaves only keys for the alarm to remove: the upload is finished.
 */
export async function finish(ctx: SessionContext, record: SessionRecord, writer: UploadWriter): Promise<void> {
  try {
    await writer.finish(record.declaredDigest, {
      linked: async ({ digest }) => {
        // What the uploader called the file, for Content-Disposition on GET /blobs.
        await writeBlobMeta(ctx.driver, record.namespace, digest, blobMetaFromUploadMetadata(record.metadata));
        markFinished(ctx, record, digest);
        record.cleanup = true;
        delete record.finishing;
        await ctx.touch(record);
        await ctx.hooks.finished?.(record);
      },
    });
  } catch (err) {
    ctx.writer = undefined;
    if (err instanceof DigestMismatchError) {
      // The writer removed the upload's resources; nothing is at a blob path. Forget it.
      await ctx.forget(record);
      throw err;
    }
    if (err instanceof HashStateUnavailableError) {
      await writer.cancel().catch(() => undefined);
      await ctx.forget(record);
      throw err;
    }
    if (!record.finished) throw err;
    console.error(`upload ${record.id}: finished, but removing its keys failed; the alarm retries`, err);
    return;
  }
  ctx.writer = undefined;
  delete record.cleanup;
  await ctx.save(record);
}

/**
 * Finishes an upload whose declared blob is already linked in its namespace: the parts stored
 * are dropped and the rest is never sent. This PATCH's body is read to its end and discarded
 * (a response before the body is taken in can reach a client as a reset connection).
 */
export async function finishLinked(
  ctx: SessionContext,
  record: SessionRecord,
  writer: UploadWriter,
  digest: Sha256Digest,
  body: ReadableStream<Uint8Array> | null,
): Promise<void> {
  const offset = writer.offset;
  record.declaredDigest = digest;
  markFinished(ctx, record, digest);
  record.cleanup = true;
  await ctx.touch(record);
  await ctx.hooks.finished?.(record);
  ctx.writer = undefined;
  try {
    await writer.cancel();
    delete record.cleanup;
    await ctx.save(record);
  } catch (err) {
    console.error(`upload ${record.id}: complete, but removing its parts failed; the alarm retries`, err);
  }
  // At most what the upload could still have taken (a body without Content-Length is not
  // sized); a body that breaks off changes nothing now.
  let room = Math.min(record.length - offset, ctx.config.maxPatchSize);
  try {
    if (body) {
      for await (const chunk of bodyChunks(body, { idleMs: ctx.config.bodyIdleTimeoutMs })) {
        room -= chunk.length;
        if (room < 0) break; // the caller cancels the rest
      }
    }
  } catch {
    // the client went away or stalled: the upload is complete all the same
  }
}

/**
 * DELETE or expiry: marked first (a crash half-way still ends in removal), then keys, then the
 * record. A finished upload whose completion event is still owed keeps its (removing) record
 * until the alarm has delivered it: answering 404 to the client must not cancel what the host
 * app is owed, or a DELETE right after a finish would hide a linked blob from it.
 */
export async function remove(ctx: SessionContext, record: SessionRecord): Promise<void> {
  ctx.writer = undefined;
  if (!record.removing) {
    record.removing = true;
    await ctx.storage.put(RECORD_KEY, record);
    await ctx.storage.setAlarm(record.events ? nextAlarm(record, ctx.now()) : ctx.now() + ALARM_RETRY_MS);
  }
  await removeKeys(ctx, record);
  if (record.events) return;
  await ctx.forget(record);
}

/**
 * Aborts the upload's multipart upload (if any is still open) and removes its keys. Safe to
 * repeat and after a finish (aborting a completed multipart upload is not an error); an `info`
 * too damaged to resume is removed key by key.
 */
export async function removeKeys(ctx: SessionContext, ref: { namespace: string; id: string }): Promise<void> {
  try {
    await (await resumeUploadWriter(ctx.driver, ref, ctx.writerOptions)).cancel();
  } catch (err) {
    if (err instanceof StorageError && !(err instanceof PathNotFoundError)) throw err;
    await removeStaleUploadKeys(ctx.driver, ref, Number.POSITIVE_INFINITY);
  }
}

/**
 * One run of the object's alarm: drives a finish nobody came back for, removes keys a finish left
 * behind, removes the upload at expiry. A failure reschedules it with backoff (never thrown: the
 * platform's own alarm retries give up after a few attempts). Returns the failures in a row.
 */
export async function runAlarm(ctx: SessionContext, failures: number): Promise<number> {
  const record = await ctx.record();
  if (!record) return failures;
  try {
    // First, and failing on its own: an owed event is never held up by the store's faults.
    if (record.events) await deliverEvents(ctx, record);
    if ((record.removing || ctx.now() >= record.expiresAt) && !record.events) {
      await remove(ctx, record);
      return failures;
    }
    if (record.removing) {
      // Keys already removed; the record waits for its owed event (alarm set below).
    } else if (record.finished) {
      if (record.cleanup) {
        await removeKeys(ctx, record);
        delete record.cleanup;
        await ctx.save(record);
      }
    } else if (record.finishing) {
      const writer = await ctx.writerFor(record);
      if (writer.offset === record.length) await finish(ctx, record, writer);
      else {
        delete record.finishing;
        await ctx.save(record);
      }
    }
    const current = await ctx.record();
    if (current) await ctx.storage.setAlarm(nextAlarm(current, ctx.now()));
    return 0;
  } catch (err) {
    ctx.writer = undefined;
    if (!(await ctx.record())) return failures; // gone (mismatch, unverifiable): nothing left to do
    console.error(`upload ${record.id}: alarm failed, retrying`, err);
    const delay = Math.min(ALARM_MAX_DELAY_MS, ALARM_RETRY_MS * 2 ** failures);
    await ctx.storage.setAlarm(ctx.now() + delay);
    return failures + 1;
  }
}
