/**
 * Minimal failing schedules found by the chaos suite (test/unit/chaos-writer.test.ts,
 * test/unit/chaos-session.test.ts), each reduced by hand to the one fault that breaks an
 * invariant of issue 14. Each asserts the behaviour the issue asks for, so each fails while its
 * bug is there. Faults are placed by operation index (createFaultyDriver's `faultAt`), found by a
 * fault-free dry run of the same calls, so the schedules survive changes to how many storage
 * calls come before the one that matters.
 */
import { describe, expect, test } from "vitest";
import { ApiError } from "../../edge/http/errors.ts";
import { blobDataPath, uploadDataPath, uploadHashStatePath, uploadInfoPath, uploadTailPath } from "../../edge/registry/paths.ts";
import { StorageUnavailableError, type StorageDriver } from "../../edge/storage/driver.ts";
import { createFaultyDriver, type FaultyDriverOptions } from "../../edge/storage/faulty.ts";
import { createMemoryDriver } from "../../edge/storage/memory.ts";
import { recordingDriver, type RecordedOp } from "../../edge/storage/testing.ts";
import type { SessionConfig } from "../../edge/upload/context.ts";
import { createMemorySessionStorage } from "../../edge/upload/record.ts";
import { UploadSession } from "../../edge/upload/session.ts";
import { UploadExistsError, createUploadWriter, resumeUploadWriter, type WriterOptions } from "../../edge/writer/index.ts";
import { seededBytes } from "../support/seeded.ts";
import { PART, digestOf, finishedProblems, keysUnder, leftoverProblems, storedOffset, tickSleep, trackMultiparts } from "../support/chaos.ts";

const NS = "chaos/repro";
const ID = "a".repeat(64);
const writerOptions: WriterOptions = { partSize: PART, retryDelayMs: 1, sleep: tickSleep };
const config: SessionConfig = {
  partSize: PART,
  maxPatchSize: 64 * 1024 * 1024,
  uploadTtlSeconds: 3600,
  bodyIdleTimeoutMs: 60_000,
};

/** 1-based index of the first recorded operation matching `match` after the `after`-th one matching `after`'s test. */
function indexOf(ops: RecordedOp[], match: (op: RecordedOp) => boolean, from = 0): number {
  const i = ops.findIndex((op, n) => n >= from && match(op));
  if (i < 0) throw new Error("dry run: operation not found");
  return i + 1;
}

describe("chaos suite: minimal failing schedules (each fails while its bug is there)", () => {
  test("writer: a finish cut off between completing the multipart upload and recording it recovers (upload with a tail, digest not declared early)", async () => {
    // Bug: the retried finish first uploads the tail as the last part of the already completed
    // multipart upload: MultipartUnknownError on every retry, the upload is stuck for good (the
    // session answers HEAD 503 forever; found by chaos-session, seed 20261114).
    const data = seededBytes(PART + 1, 1);
    const run = async (driver: StorageDriver) => {
      const w = await createUploadWriter(driver, { namespace: NS, id: ID, length: data.length }, writerOptions);
      await w.write(data);
      return w.finish();
    };
    const ops: RecordedOp[] = [];
    await run(recordingDriver(createMemoryDriver(), ops));
    const complete = indexOf(ops, (o) => o.op === "complete");
    const recordAssembled = indexOf(ops, (o) => o.op === "put" && o.key === uploadInfoPath(NS, ID), complete);

    const store = createMemoryDriver();
    const faulty = createFaultyDriver(store, { seed: 1, faultAt: { [recordAssembled]: "failBefore" } });
    await expect(run(faulty)).rejects.toThrow(/injected|unavailable/);
    const retried = await resumeUploadWriter(faulty, { namespace: NS, id: ID }, writerOptions);
    const done = await retried.finish();
    expect(done.digest).toBe(digestOf(data));
    expect(await finishedProblems(store, NS, ID, data)).toEqual([]);
  });

  test("writer: createUploadWriter retried after its record's answer was lost leaves no multipart upload open", async () => {
    // Bug: the retry creates a second multipart upload, then meets the record (UploadExistsError)
    // and drops it without aborting it. Same when the record write failed before taking effect:
    // the first attempt's multipart upload is never aborted.
    for (const kind of ["failAfter", "failBefore"] as const) {
      const store = trackMultiparts(createMemoryDriver());
      const info = 3; // startedat, createMultipart, info
      const faulty = createFaultyDriver(store, { seed: 1, faultAt: { [info]: kind } } satisfies FaultyDriverOptions);
      const init = { namespace: NS, id: ID, length: 2 * PART };
      // A lost answer is looked after: the record is there and names the multipart upload, so the
      // creation succeeds (aborting it would leave an upload that can never complete). A record
      // that was never written makes the creation fail, its multipart upload aborted.
      const first = await createUploadWriter(faulty, init, writerOptions).catch((err: unknown) => err);
      if (kind === "failAfter") expect(first).toMatchObject({ offset: 0, length: 2 * PART });
      else expect(String(first)).toMatch(/injected|unavailable/);
      const again = await createUploadWriter(faulty, init, writerOptions).catch((err: unknown) => {
        if (err instanceof UploadExistsError) return resumeUploadWriter(faulty, init, writerOptions);
        throw err;
      });
      await again.cancel();
      expect({ kind, open: store.openMultiparts().length }).toEqual({ kind, open: 0 });
    }
  });

  test("session: a POST whose record write lost its answer succeeds, and leaves no multipart upload open after expiry and purge", async () => {
    // Bug: create()'s catch removes the upload's keys (removeUploadKeys) without aborting the
    // multipart upload createUploadWriter had started; nothing can find it afterwards.
    const store = trackMultiparts(createMemoryDriver());
    const storage = createMemorySessionStorage();
    let now = Date.now();
    const faulty = createFaultyDriver(store, { seed: 1, faultAt: { 3: "failAfter" } });
    const session = new UploadSession({ driver: faulty, storage, config, now: () => now, writer: writerOptions });
    // The record's answer was lost but the record is there: the creation succeeds (see above).
    const created = await session.create({ id: ID, namespace: NS, length: 2 * PART, metadata: "" });
    expect(created.offset).toBe(0);
    now += 2 * 3600 * 1000;
    await session.alarm();
    await session.purge(now, { namespace: NS, id: ID });
    expect(await keysUnder(store, `docker/registry/v2/repositories/${NS}/`)).toEqual([]);
    expect(store.openMultiparts()).toEqual([]);
  });

  test("writer: a commit whose hasher-state write fails returns only after its tail write landed, so no key outlives the finish", async () => {
    // Bug: the commit awaited its new keys with Promise.all, which rejects at the first failure
    // while the other writes are still on their way. The write failed, the client resumed and
    // finished, and the slow tail put landed after the finish had removed the upload's keys
    // (chaos-session seed 14, schedule 57 of 80: "keys left under the upload: tail/1", only in
    // runs where the tail put's injected latency outlasted the retry and the finish).
    const store = createMemoryDriver();
    const data = seededBytes(2, 4);
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let faulty = true;
    const driver: StorageDriver = {
      ...store,
      async put(key, body, opts) {
        if (faulty && key === uploadTailPath(NS, ID, 1)) await held; // a slow answer
        if (faulty && key === uploadHashStatePath(NS, ID, 1)) throw new StorageUnavailableError(key, store.name, 1);
        return store.put(key, body, opts);
      },
    };
    const first = await createUploadWriter(driver, { namespace: NS, id: ID, length: data.length }, writerOptions);
    const failed = first.write(data.subarray(0, 1)).then(
      () => undefined,
      (err: unknown) => err,
    );
    const finishAll = async () => {
      faulty = false;
      const resumed = await resumeUploadWriter(driver, { namespace: NS, id: ID }, writerOptions);
      await resumed.write(data.subarray(resumed.offset));
      await resumed.finish();
    };
    // What the client does next once the write has answered: resume from the committed offset.
    const answeredEarly = await Promise.race([failed.then(() => true), tickSleep(20).then(() => false)]);
    if (answeredEarly) await finishAll();
    release();
    expect(await failed).toBeInstanceOf(StorageUnavailableError);
    if (!answeredEarly) await finishAll();
    await tickSleep(5);
    expect(await leftoverProblems(store, NS, ID)).toEqual([]);
  });

  test("writer: a finish whose check of the assembled object fails returns only after its record write landed", async () => {
    // Same shape as the commit's: the finish records "assembled" beside the size check and the
    // blob lookup; with Promise.all a failed check rejected while the record's rewrite was still
    // on its way, so the next request (HEAD, PATCH, alarm) raced a write of its own finish.
    const data = seededBytes(PART + 1, 6);
    const store = createMemoryDriver();
    const dataKey = uploadDataPath(NS, ID);
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const driver: StorageDriver = {
      ...store,
      async put(key, body, opts) {
        const assembled = await store.stat(dataKey).then(
          () => true,
          () => false,
        );
        if (key === uploadInfoPath(NS, ID) && assembled) await held; // the "assembled" record: a slow answer
        return store.put(key, body, opts);
      },
      async stat(key) {
        if (key === dataKey) throw new StorageUnavailableError(key, store.name, 1);
        return store.stat(key);
      },
    };
    const w = await createUploadWriter(driver, { namespace: NS, id: ID, length: data.length }, writerOptions);
    await w.write(data);
    let released = false;
    let answeredBeforeRelease = false;
    const finishing = w.finish().then(
      () => undefined,
      (err: unknown) => err,
    );
    void finishing.then(() => (answeredBeforeRelease = !released));
    await tickSleep(20);
    released = true;
    release();
    expect(await finishing).toBeInstanceOf(StorageUnavailableError);
    expect(answeredBeforeRelease).toBe(false);
  });

  describe("S3-like stores (stale reads and listings)", () => {
    test("session: HEAD of an upload whose record exists is never 404 when the bucket's read of `info` is stale", async () => {
      // Bug: #writerFor maps the writer's UploadUnknownError (a stale "not found" of a key written
      // just before) to 404 UPLOAD_UNKNOWN although the object's own record says the upload exists;
      // tus clients then start the upload again from zero. A 503 (retry) is what the record allows.
      const storage = createMemorySessionStorage();
      const faulty = createFaultyDriver(createMemoryDriver(), { seed: 1, rates: { stale: 1 }, ops: ["get", "stat", "list"], staleWindow: 50 });
      await new UploadSession({ driver: faulty, storage, config, writer: writerOptions }).create({ id: ID, namespace: NS, length: 10, metadata: "" });
      const restarted = new UploadSession({ driver: faulty, storage, config, writer: writerOptions });
      const answer = await restarted.head(NS).catch((e: unknown) => e);
      expect(answer instanceof ApiError ? answer.status : 200).not.toBe(404);
    });

    test("session: HEAD after a restart never reports less than an offset a PATCH answered, when the read of `info` is stale", async () => {
      // Bug: the restarted object resumes its writer from whatever `info` the store answers; an
      // older version (offset 100 or 0 where a PATCH had answered 200) was reported as the offset
      // and the tus client's offset went back (chaos-session: "HEAD: offset went back"). The
      // record in the object's own storage knows the committed offset: below it is a stale read,
      // answered 503 (retry) like a stale "not found".
      const data = seededBytes(300, 5);
      const body = (bytes: Uint8Array) => new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes), c.close()) });
      const answers: string[] = [];
      for (let seed = 1; seed <= 8; seed++) {
        const faulty = createFaultyDriver(createMemoryDriver(), { seed, rates: { stale: 1 }, ops: ["get", "stat", "list"], staleWindow: 50 });
        faulty.setEnabled(false); // every read fresh until the restart, the writes remembered
        const storage = createMemorySessionStorage();
        const session = new UploadSession({ driver: faulty, storage, config, writer: writerOptions });
        await session.create({ id: ID, namespace: NS, length: data.length, metadata: "" });
        await session.patch(NS, { offset: 0, contentLength: 100, body: body(data.subarray(0, 100)) });
        const told = await session.patch(NS, { offset: 100, contentLength: 100, body: body(data.subarray(100, 200)) });
        expect(told.offset).toBe(200);
        faulty.setEnabled(true);
        const restarted = new UploadSession({ driver: faulty, storage, config, writer: writerOptions });
        const head = await restarted.head(NS).catch((e: unknown) => e);
        answers.push(head instanceof ApiError ? `${head.status}` : `offset ${(head as { offset: number }).offset}`);
      }
      expect(answers.filter((a) => a !== "503" && a !== "offset 200")).toEqual([]);
    });

    test("session: an offset HEAD answered is recorded before the answer, so a later restart on a stale read never reports less", async () => {
      // The object died between a PATCH's commit (offset 200 in the store) and its record write
      // (committed still 100): the next HEAD resumes from the store and answers 200. Unless it
      // records that first, a restart after it on a stale read answered 100.
      const data = seededBytes(300, 6);
      const body = (bytes: Uint8Array) => new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes), c.close()) });
      const answers: string[] = [];
      for (let seed = 1; seed <= 8; seed++) {
        const faulty = createFaultyDriver(createMemoryDriver(), { seed, rates: { stale: 1 }, ops: ["get", "stat", "list"], staleWindow: 50 });
        faulty.setEnabled(false);
        const storage = createMemorySessionStorage();
        const session = new UploadSession({ driver: faulty, storage, config, writer: writerOptions });
        await session.create({ id: ID, namespace: NS, length: data.length, metadata: "" });
        await session.patch(NS, { offset: 0, contentLength: 100, body: body(data.subarray(0, 100)) });
        // The PATCH of 100..200 committed in the store, its record write lost with the object.
        const writer = await resumeUploadWriter(faulty, { namespace: NS, id: ID }, writerOptions);
        await writer.write(data.subarray(100, 200));
        const head = await new UploadSession({ driver: faulty, storage, config, writer: writerOptions }).head(NS);
        expect(head.offset).toBe(200);
        faulty.setEnabled(true);
        const again = await new UploadSession({ driver: faulty, storage, config, writer: writerOptions }).head(NS).catch((e: unknown) => e);
        answers.push(again instanceof ApiError ? `${again.status}` : `offset ${(again as { offset: number }).offset}`);
      }
      expect(answers.filter((a) => a !== "503" && a !== "offset 200")).toEqual([]);
    });

    test("writer: resuming from a stale `info` never moves the committed offset back", async () => {
      // Bug: commits rewrite `info` unconditionally; a writer resumed from an older `info` (stale
      // read) commits its older offset over the newer one. A conditional put (If-Match on the
      // etag read) would refuse it.
      // The stale version a read answers is drawn by seed: try a few, some resume from "absent"
      // (UploadUnknownError, the 404 bug above), the others from an older offset.
      const data = seededBytes(300, 2);
      const offsets: number[] = [];
      for (let seed = 1; seed <= 8; seed++) {
        const store = createMemoryDriver();
        const faulty = createFaultyDriver(store, { seed, rates: { stale: 1 }, ops: ["get", "stat", "list"], staleWindow: 50 });
        const w = await createUploadWriter(faulty, { namespace: NS, id: ID, length: data.length }, writerOptions);
        await w.write(data.subarray(0, 100));
        await w.write(data.subarray(100, 200));
        const resumed = await resumeUploadWriter(faulty, { namespace: NS, id: ID }, writerOptions).catch(() => undefined);
        if (!resumed) continue;
        await resumed.write(data.subarray(resumed.offset, resumed.offset + 10)).catch(() => undefined);
        offsets.push((await storedOffset(store, NS, ID)) ?? -1);
      }
      expect(offsets.length).toBeGreaterThan(0);
      expect(offsets.filter((o) => o < 200)).toEqual([]);
    });

    test("writer: a finish leaves no key under the upload when the store's listing is stale", async () => {
      // Bug: removeUploadKeys deletes what a listing returns; a listing that misses keys written
      // just before (tail and hasher state at the final offset) leaves them behind for good (the
      // record is gone, so nothing comes back for them before the expiry purge). The writer
      // knows the keys of its committed state and could delete those by name as well.
      const store = createMemoryDriver();
      const data = seededBytes(300, 3);
      const faulty = createFaultyDriver(store, { seed: 1, rates: { stale: 1 }, ops: ["list"], staleWindow: 50 });
      const w = await createUploadWriter(faulty, { namespace: NS, id: ID, length: data.length }, writerOptions);
      await w.write(data);
      await w.finish();
      expect(await leftoverProblems(store, NS, ID)).toEqual([]);
      expect((await store.stat(blobDataPath(digestOf(data)))).size).toBe(300);
    });
  });
});
