import { afterEach, describe, expect, test, vi } from "vitest";
import { seededBytes } from "../../test/support/seeded.ts";
import { portChunks, serveFile } from "../hashing/reader.ts";
import { type CopyPace, runCopier } from "./copier.ts";
import type { StageEvent, StageSink } from "./opfs.ts";
import { COPIER_ROOM, type CopierInbound, passToCopier } from "./pass.ts";

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

/** Lets queued messages and promise callbacks run (for what must NOT have happened: the copy is held, so no wait would change it). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

/** The copier on `file`, with no reader to return passed buffers to (it reads the file itself). */
function start(file: Blob, sink: StageSink, pace: CopyPace = "alongside") {
  const events: StageEvent[] = [];
  let settled = false;
  const { port1: hasher, port2: copierSide } = new MessageChannel();
  ports.push(hasher, copierSide);
  const done = runCopier({ file, key: "k", step: 4 * MiB, pace }, copierSide, {
    report: (e) => events.push(e),
    settled: () => void (settled = true),
    open: async () => sink,
  });
  const send = (msg: CopierInbound) => hasher.postMessage(msg);
  /** The hash's checkpoints every 4 MiB up to `to`, as hasher.worker.ts tells them. */
  const hashedTo = (to: number) => {
    for (let at = 4 * MiB; at <= to; at += 4 * MiB) send({ type: "checkpoint", offset: at });
  };
  return { events, done, send, hashedTo, settled: () => settled };
}

describe("the copier (issue 18: the copy beside the hash)", () => {
  test("a hash that ran ahead of the copy and ended: the copy goes on, committed every step, and settles only once whole", async () => {
    const data = seededBytes(12 * MiB, 18);
    const held = heldSink(data.length);
    const c = start(new Blob([data]), held.sink);
    // The hasher ran ahead: checkpoints at 4 and 8 MiB and its end, before any byte was copied.
    c.send({ type: "checkpoint", offset: 4 * MiB });
    c.send({ type: "checkpoint", offset: 8 * MiB });
    c.send({ type: "end" });
    await settle();
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

  test("a copy that runs full stops (and says so), and settles once the hash has ended", async () => {
    const data = seededBytes(12 * MiB, 19);
    const held = heldSink(data.length, "QuotaExceededError");
    const c = start(new Blob([data]), held.sink);
    c.send({ type: "checkpoint", offset: 4 * MiB });
    held.allow(); // the first write fails: storage full
    await c.done;
    expect(c.events).toEqual([{ kind: "stopped", why: "full" }]);
    c.send({ type: "checkpoint", offset: 8 * MiB });
    await settle();
    expect(c.settled()).toBe(false); // the hash still runs
    c.send({ type: "end" });
    await vi.waitFor(() => expect(c.settled()).toBe(true));
  });

  test("a copy far behind the hash (storage in memory, as a private window's OPFS) stops as slow once the hash has done 64 MiB", async () => {
    const data = seededBytes(72 * MiB, 20);
    const held = heldSink(data.length);
    const c = start(new Blob([data]), held.sink);
    c.send({ type: "start", offset: 0 });
    c.hashedTo(64 * MiB);
    await settle();
    held.allow(); // 4 MiB copied while the hash did 64: under an eighth
    await c.done;
    expect(c.events).toEqual([{ kind: "stopped", why: "slow" }]);
    c.send({ type: "end" });
    await vi.waitFor(() => expect(c.settled()).toBe(true));
  });

  test("a copy above an eighth of the hash goes on (a disk under load slows both alike)", async () => {
    const data = seededBytes(72 * MiB, 21);
    const held = heldSink(data.length);
    const c = start(new Blob([data]), held.sink);
    c.send({ type: "start", offset: 0 });
    for (let i = 0; i < 4; i++) held.allow();
    await vi.waitFor(() => expect(c.events.at(-1)).toEqual({ kind: "written", offset: 16 * MiB }));
    // The hash is at 64 MiB, the copy at 16: a quarter.
    c.hashedTo(64 * MiB);
    c.send({ type: "end" });
    await settle();
    for (let i = 0; i < 14; i++) held.allow();
    await c.done;
    expect(c.events.at(-1)).toMatchObject({ kind: "whole" });
    expect(Buffer.compare(held.bytes, data)).toBe(0);
  });
});

/** A copy in memory that writes at once, recording where each write began. */
function memorySink(size: number, initial?: Uint8Array) {
  const bytes = new Uint8Array(size);
  if (initial) bytes.set(initial);
  const writes: number[] = [];
  const sink: StageSink = {
    size: initial?.length ?? 0,
    inPlace: true,
    async write(chunk, at) {
      writes.push(at);
      bytes.set(chunk, at);
    },
    async commit() {},
    async close() {},
  };
  return { sink, bytes, writes };
}

/**
 * The three workers' ring in one thread: a reader serving `file`, a "hasher" that takes its chunks
 * and passes them on as hasher.worker.ts does, and the copier writing into `sink`. Counts the
 * buffers the copier returned to the reader.
 */
async function ring(file: Blob, sink: StageSink, from = 0) {
  const toReader = new MessageChannel();
  const returns = new MessageChannel();
  const toCopier = new MessageChannel();
  ports.push(toReader.port1, toReader.port2, returns.port1, returns.port2, toCopier.port1, toCopier.port2);
  serveFile(file, toReader.port2, returns.port2);
  let returned = 0;
  const reader = { postMessage: (msg: unknown, transfer: Transferable[]) => (returned++, returns.port1.postMessage(msg, transfer)) } as unknown as MessagePort;
  const events: StageEvent[] = [];
  const copied = runCopier({ file, key: "k", step: 4 * MiB, pace: "alongside" }, toCopier.port2, {
    report: (e) => events.push(e),
    settled: () => undefined,
    open: async () => sink,
    reader,
  });
  const hashed: Uint8Array[] = [];
  toCopier.port1.postMessage({ type: "start", offset: from } satisfies CopierInbound);
  // A clock that stands still: each wait for room gets the whole grace, however slow this one thread is (the budget has a test of its own).
  const pass = passToCopier(toCopier.port1, () => 0);
  for await (const chunk of portChunks(toReader.port1, from, 4 * MiB, 3 + COPIER_ROOM, pass)) hashed.push(chunk.slice());
  toCopier.port1.postMessage({ type: "end" } satisfies CopierInbound);
  await copied;
  return { events, hashed: Buffer.concat(hashed), returned: () => returned };
}

describe("the copy alongside the hash: the hasher's buffers, passed on (issue 18)", () => {
  test("every buffer the hasher passes is written into the copy and goes back to the reader; no byte is read twice", async () => {
    const data = seededBytes(40 * MiB + 5, 22);
    const mem = memorySink(data.length);
    const r = await ring(new Blob([data]), mem.sink);
    expect(r.hashed.equals(Buffer.from(data))).toBe(true); // the hash saw every byte, in order
    expect(Buffer.compare(mem.bytes, data)).toBe(0);
    const whole = r.events.at(-1);
    expect(whole).toMatchObject({ kind: "whole" });
    expect(whole?.kind === "whole" && whole.spent?.readAgain).toBe(0);
    // 11 buffers of the file, each back with the reader once it was written.
    await vi.waitFor(() => expect(r.returned()).toBe(11));
  });

  test("a copy already ahead of the hash (kept from an earlier session) gives the buffers behind it straight back and goes on from its end", async () => {
    const data = seededBytes(24 * MiB, 23);
    const mem = memorySink(data.length, data.subarray(0, 8 * MiB));
    const r = await ring(new Blob([data]), mem.sink);
    expect(Buffer.compare(mem.bytes, data)).toBe(0);
    expect(mem.writes[0]).toBe(8 * MiB);
    const whole = r.events.at(-1);
    expect(whole?.kind === "whole" && whole.spent?.readAgain).toBe(0);
    await vi.waitFor(() => expect(r.returned()).toBe(6));
  });

  test("the hasher waits for room only within its budget: a copier that never answers gets two buffers, then the hash goes on without it", async () => {
    const { port1, port2 } = new MessageChannel();
    ports.push(port1, port2);
    const got: number[] = [];
    port2.onmessage = (e: MessageEvent<CopierInbound>) => e.data.type === "bytes" && got.push(e.data.at);
    const pass = passToCopier(port1);
    const passes = [];
    for (let i = 0; i < 3; i++) passes.push(await pass(i * MiB, new ArrayBuffer(MiB), MiB));
    expect(passes).toEqual([true, true, false]);
    await vi.waitFor(() => expect(got).toEqual([0, MiB]));
    // Room granted while it waits: the buffer goes on.
    const waiting = pass(3 * MiB, new ArrayBuffer(MiB), MiB);
    port2.postMessage({ type: "want", buffers: 1 });
    expect(await waiting).toBe(true);
  });
});

describe("the copy after the hash (fewer than 4 cores)", () => {
  test("nothing is written while the hash runs; the copy follows its end, read from the file", async () => {
    const data = seededBytes(12 * MiB, 24);
    const mem = memorySink(data.length);
    const c = start(new Blob([data]), mem.sink, "after-hash");
    c.send({ type: "start", offset: 0 });
    c.send({ type: "checkpoint", offset: 8 * MiB });
    await settle();
    expect(mem.writes).toEqual([]);
    c.send({ type: "end" });
    await c.done;
    expect(Buffer.compare(mem.bytes, data)).toBe(0);
    const whole = c.events.at(-1);
    expect(whole?.kind === "whole" && whole.spent?.readAgain).toBe(data.length);
    await vi.waitFor(() => expect(c.settled()).toBe(true));
  });

  test("a copy far slower than the hash had been (storage in memory) stops as slow", async () => {
    const data = seededBytes(72 * MiB, 25);
    const held = heldSink(data.length);
    const c = start(new Blob([data]), held.sink, "after-hash");
    c.send({ type: "start", offset: 0 });
    c.hashedTo(64 * MiB);
    await settle(); // the hash did 64 MiB in about this long
    c.send({ type: "end" });
    await new Promise((resolve) => setTimeout(resolve, 200)); // the copy's first 4 MiB take ten times as long
    held.allow();
    await c.done;
    expect(c.events).toEqual([{ kind: "stopped", why: "slow" }]);
  });
});
