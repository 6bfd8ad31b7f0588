import { afterEach, describe, expect, test, vi } from "vitest";
import { seededBytes } from "../../test/support/seeded.ts";
import { CHECKPOINT_VERSION, createMemoryCheckpointStore, type HashCheckpoint } from "../hashing/checkpoint.ts";
import { type CopierInbound, runCopier } from "./copier.ts";
import type { StageEvent, StageSink } from "./opfs.ts";

const MiB = 1024 * 1024;
const ports: MessagePort[] = [];
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
});

/** A copy in memory (written in place, as with a sync access handle) whose writes wait until the test lets them through, one at a time. */
function heldSink(size: number, fail?: string) {
  const bytes = new Uint8Array(size);
  let allowed = 0;
  let wake: (() => void) | undefined;
  let commits = 0;
  const sink: StageSink = {
    size: 0,
    inPlace: true,
    async write(chunk, at) {
      while (allowed === 0) await new Promise<void>((resolve) => (wake = resolve));
      allowed--;
      if (fail) throw new DOMException("no room", fail);
      bytes.set(chunk, at);
    },
    async commit() {
      commits++;
    },
    async close() {},
  };
  return {
    sink,
    bytes,
    commits: () => commits,
    allow() {
      allowed++;
      wake?.();
    },
  };
}

const checkpointAt = (offset: number, size: number): HashCheckpoint => ({ v: CHECKPOINT_VERSION, size, offset, state: new Uint8Array([offset & 0xff]) });

/** Lets queued messages and promise callbacks run (for what must NOT have happened: the copy is held, so no wait would change it). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

/** The copier on `file`, with no reader sharing bytes (it reads the file itself). */
function start(file: Blob, sink: StageSink) {
  const store = createMemoryCheckpointStore();
  const events: StageEvent[] = [];
  let settled = false;
  const { port1: hasher, port2: copierSide } = new MessageChannel();
  ports.push(hasher, copierSide);
  const done = runCopier({ file, key: "k", step: 4 * MiB }, copierSide, {
    checkpoints: store,
    report: (e) => events.push(e),
    settled: () => void (settled = true),
    open: async () => sink,
  });
  const send = (msg: CopierInbound) => hasher.postMessage(msg);
  return { store, events, done, send, settled: () => settled };
}

describe("the copier (issue 18: the copy beside the hash)", () => {
  test("a checkpoint the hasher took ahead of the copy is stored at once (only a whole copy stands in for the file); the copy goes on after the hash ended", async () => {
    const data = seededBytes(12 * MiB, 18);
    const held = heldSink(data.length);
    const c = start(new Blob([data]), held.sink);
    // The hasher ran ahead: checkpoints at 4 and 8 MiB and its end, before any byte was copied.
    c.send({ type: "checkpoint", checkpoint: checkpointAt(4 * MiB, data.length) });
    c.send({ type: "checkpoint", checkpoint: checkpointAt(8 * MiB, data.length) });
    c.send({ type: "end" });
    // The hash's progress does not wait for the copy: a crash now resumes the hash at 8 MiB.
    await vi.waitFor(() => expect(c.store.entries.get("k")?.offset).toBe(8 * MiB));
    expect(c.events).toEqual([]);

    held.allow(); // the copy reaches 4 MiB
    await vi.waitFor(() => expect(c.events).toEqual([{ kind: "written", offset: 4 * MiB }]));
    held.allow(); // 8 MiB
    await vi.waitFor(() => expect(c.events).toHaveLength(2));
    await settle();
    expect(c.settled()).toBe(false); // the hash ended, the copy has not

    held.allow(); // the whole file
    await c.done;
    await vi.waitFor(() => expect(c.settled()).toBe(true));
    expect(c.events.at(-1)).toMatchObject({ kind: "whole" });
    expect(Buffer.compare(held.bytes, data)).toBe(0); // the copy is the file (toEqual on 12 MiB takes seconds)
    expect(held.commits()).toBe(3);
  });

  test("a copy that runs full stops and is removed; checkpoints are stored as before: the hash goes on as without staging", async () => {
    const data = seededBytes(12 * MiB, 19);
    const held = heldSink(data.length, "QuotaExceededError");
    const c = start(new Blob([data]), held.sink);
    c.send({ type: "checkpoint", checkpoint: checkpointAt(4 * MiB, data.length) });
    await vi.waitFor(() => expect(c.store.entries.get("k")?.offset).toBe(4 * MiB));
    held.allow(); // the first write fails: storage full
    await c.done;
    expect(c.events).toEqual([{ kind: "stopped", why: "full" }]);
    await vi.waitFor(() => expect(c.store.entries.get("k")?.offset).toBe(4 * MiB));
    c.send({ type: "checkpoint", checkpoint: checkpointAt(8 * MiB, data.length) });
    c.send({ type: "end" });
    await vi.waitFor(() => expect(c.settled()).toBe(true));
    expect(c.store.entries.get("k")?.offset).toBe(8 * MiB);
  });

  test("a copy far behind the hash (storage in memory, as a private window's OPFS) stops as slow once the hash has done 64 MiB; checkpoints are then stored as they come", async () => {
    const data = seededBytes(72 * MiB, 20);
    const held = heldSink(data.length);
    const c = start(new Blob([data]), held.sink);
    c.send({ type: "start", offset: 0 });
    for (let at = 4 * MiB; at <= 64 * MiB; at += 4 * MiB) c.send({ type: "checkpoint", checkpoint: checkpointAt(at, data.length) });
    await settle();
    held.allow(); // 4 MiB copied while the hash did 64: under an eighth
    await c.done;
    expect(c.events).toEqual([{ kind: "stopped", why: "slow" }]);
    c.send({ type: "end" });
    await vi.waitFor(() => expect(c.settled()).toBe(true));
    expect(c.store.entries.get("k")?.offset).toBe(64 * MiB);
  });

  test("a copy above an eighth of the hash goes on (a disk under load slows both alike)", async () => {
    const data = seededBytes(72 * MiB, 21);
    const held = heldSink(data.length);
    const c = start(new Blob([data]), held.sink);
    c.send({ type: "start", offset: 0 });
    for (let i = 0; i < 4; i++) held.allow();
    await vi.waitFor(() => expect(c.events.at(-1)).toEqual({ kind: "written", offset: 16 * MiB }));
    // The hash is at 64 MiB, the copy at 16: a quarter.
    for (let at = 4 * MiB; at <= 64 * MiB; at += 4 * MiB) c.send({ type: "checkpoint", checkpoint: checkpointAt(at, data.length) });
    c.send({ type: "end" });
    await settle();
    for (let i = 0; i < 14; i++) held.allow();
    await c.done;
    expect(c.events.at(-1)).toMatchObject({ kind: "whole" });
    expect(Buffer.compare(held.bytes, data)).toBe(0);
  });
});
