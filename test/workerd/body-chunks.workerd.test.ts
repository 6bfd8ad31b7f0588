/**
 * edge/body-chunks.ts in workerd, where request bodies are byte streams: bodies are read in large
 * chunks (not the small pieces they were written in), a stalled body is cut off after the idle
 * time with its source cancelled, and a plain JS stream still works.
 */
import { describe, expect, test } from "vitest";
import { BodyIdleTimeoutError, READ_MIN, READ_TARGET_MS, bodyChunks, nextMin } from "../../edge/writer/body-chunks.ts";
import { seeded } from "./http-support.ts";

const KiB = 1024;

/** A byte stream like a request body, written in `piece`-byte writes; left open when `close` is false. */
function byteBody(data: Uint8Array, piece: number, close = true): { body: ReadableStream<Uint8Array>; writer: WritableStreamDefaultWriter<Uint8Array> } {
  const { readable, writable } = new FixedLengthStream(close ? data.length : data.length + 1);
  const writer = writable.getWriter();
  void (async () => {
    for (let at = 0; at < data.length; at += piece) await writer.write(data.slice(at, at + piece));
    if (close) await writer.close();
  })().catch(() => undefined);
  return { body: readable, writer };
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; count: number }> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk.slice()); // chunks are reused: copy
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) bytes.set(p, at), (at += p.length);
  return { bytes, count: parts.length };
}

describe("bodyChunks", () => {
  test("reads a byte stream written in 4 KiB pieces in far fewer, larger chunks, byte for byte", async () => {
    const data = seeded(8 * 1024 * KiB + 7, 5);
    const { bytes, count } = await collect(bodyChunks(byteBody(data, 4 * KiB).body));
    expect(bytes).toEqual(data);
    // 2,049 pieces were written; the reader waits for up to 256 KiB per read.
    expect(count).toBeLessThan(100);
  });

  test("cuts off a body that stops sending: BodyIdleTimeoutError after idleMs, source cancelled", async () => {
    const data = seeded(600 * KiB, 6);
    const { body, writer } = byteBody(data, 64 * KiB, false);
    const started = Date.now();
    let seen = 0;
    const read = (async () => {
      for await (const chunk of bodyChunks(body, { idleMs: 500 })) seen += chunk.length;
    })();
    await expect(read).rejects.toBeInstanceOf(BodyIdleTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    // All but at most the last read's worth arrived before the cut.
    expect(seen).toBeGreaterThan(data.length - READ_MIN - 1);
    expect(seen).toBeLessThanOrEqual(data.length);
    // The source was cancelled: the sender's next write fails instead of waiting forever.
    await expect(writer.write(new Uint8Array(1))).rejects.toThrow();
  });

  test("reads a plain (non-byte) JS stream as it comes", async () => {
    const data = seeded(100 * KiB, 7);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < data.length; at += 10 * KiB) controller.enqueue(data.slice(at, at + 10 * KiB));
        controller.close();
      },
    });
    const { bytes, count } = await collect(bodyChunks(body));
    expect(bytes).toEqual(data);
    expect(count).toBe(10);
  });

  test("yields a Uint8Array body as one chunk, and nothing for an empty one", async () => {
    expect((await collect(bodyChunks(new Uint8Array([1, 2, 3])))).count).toBe(1);
    expect((await collect(bodyChunks(new Uint8Array(0)))).count).toBe(0);
  });
});

describe("nextMin", () => {
  test("asks for about READ_TARGET_MS of bytes at the rate so far, within [1, READ_MIN]", () => {
    expect(nextMin(10 * KiB, 1000)).toBe(Math.floor(((10 * KiB) / 1000) * READ_TARGET_MS)); // 10 KiB/s: 2.5 KiB
    expect(nextMin(1024 * KiB * 1024, 1000)).toBe(READ_MIN); // 1 GiB/s: capped
    expect(nextMin(0, 5000)).toBe(1); // nothing yet: take whatever comes
    expect(nextMin(64 * KiB, 0)).toBe(READ_MIN); // instant: no division by zero
  });
});
