import { createExecutionContext, createScheduledController, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { expect, test } from "vitest";
import worker from "../../edge/index.ts";
import { MiB, bucketKeys, create, getBlob, head, patch, seeded, sha256, stubOf, upload } from "./http-support.ts";

async function runCron(scheduledTime: number): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime, cron: "17 * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/** Pretends the upload's last write was `ageMs` ago (its record's expiry moves back by that much). */
async function age(id: string, ageMs: number): Promise<void> {
  await runInDurableObject(stubOf(id), async (_instance, state) => {
    const record = await state.storage.get<{ expiresAt: number }>("upload");
    if (!record) throw new Error("no record");
    await state.storage.put("upload", { ...record, expiresAt: record.expiresAt - ageMs });
  });
}

const DAY = 86400_000;

test("the scheduled purge removes exactly the expired uploads' keys; expired uploads answer 410 until then", async () => {
  const done = seeded(MiB, 41);
  const finished = await create({ length: done.length });
  await upload(finished.url, done, MiB);
  const old = await create({ length: 20 * MiB });
  await upload(old.url, seeded(9 * MiB, 42), 9 * MiB); // a stored part + a tail
  const fresh = await create({ length: 20 * MiB });
  expect((await patch(fresh.url, 0, seeded(3, 43))).status).toBe(204);

  await age(old.id, 8 * DAY);
  expect((await head(old.url)).status).toBe(410);
  const before = await bucketKeys();
  expect(before.some((k) => k.includes(old.id))).toBe(true);
  expect(before.some((k) => k.includes(fresh.id))).toBe(true);

  await runCron(Date.now());
  const after = await bucketKeys();
  expect(after).toEqual(before.filter((k) => !k.includes(old.id)));
  expect((await head(old.url)).status).toBe(404);
  expect((await head(fresh.url)).status).toBe(200);
  expect(new Uint8Array(await (await getBlob(`/blobs/${await sha256(done)}`)).arrayBuffer())).toEqual(done);

  // The clock is the cron's scheduledTime: eight days on, the fresh upload has expired too.
  await runCron(Date.now() + 8 * DAY);
  const later = await bucketKeys();
  expect(later).toEqual(after.filter((k) => !k.includes(fresh.id)));
  expect(later.some((k) => k.includes("/blobs/"))).toBe(true);
  expect(later.some((k) => k.includes("/_layers/"))).toBe(true);
});
