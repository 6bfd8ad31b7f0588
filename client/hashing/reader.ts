/**
 * Reading a File in a worker of its own, handing the hasher full buffers over a MessagePort.
 *
 * Why a second worker: reading a Blob costs CPU in the reading thread (each chunk is copied out
 * of the browser's data pipe into a new ArrayBuffer, and that garbage must be collected). In the
 * hasher's own thread that work is serialised with hashing and cost ~10-25% of the throughput
 * (docs/bench.md, item 1). Here it runs on another thread, into a few reused buffers that are
 * transferred (not copied) to the hasher and back: the hasher thread only hashes.
 *
 * Protocol on the port: hasher -> reader `start` (offset, buffer size, buffers in flight) and
 * `free` (a hashed buffer returned); reader -> hasher `chunk`, `end` or `error`. While the file is
 * also copied into this browser (staging/copier.ts), a copy of each buffer goes to the copier on a
 * port of its own, as long as the copier has room for it (it asks for buffers): the file is read
 * once for both, and the reader never waits for the copier.
 */
import type { SharedBytes, SharedBytesAsk } from "../staging/copier.ts";

export type ReaderRequest = { type: "start"; offset: number; bufferSize: number; buffers: number } | { type: "free"; buffer: ArrayBuffer };

export type ReaderResponse = { type: "chunk"; buffer: ArrayBuffer; length: number } | { type: "end" } | { type: "error"; name: string; message: string };

/** Reader side: fills buffers from `file` at the offset the hasher asks for, at most `buffers` ahead; with `copier`, shares them (above). */
export function serveFile(file: Blob, port: MessagePort, copier?: MessagePort): void {
  const free: ArrayBuffer[] = [];
  let credits = 0;
  let wake: (() => void) | undefined;
  port.onmessage = (event: MessageEvent<ReaderRequest>) => {
    const msg = event.data;
    if (msg.type === "free") {
      free.push(msg.buffer);
      credits++;
      wake?.();
      return;
    }
    credits = msg.buffers;
    pump(msg.offset, msg.bufferSize).catch((error: unknown) =>
      port.postMessage({
        type: "error",
        // The name goes along: it is what says "the file is unreadable" (errors.ts) on the other side.
        name: error instanceof Error ? error.name : "Error",
        message: error instanceof Error ? error.message : String(error),
      } satisfies ReaderResponse),
    );
  };
  let copierRoom = 0;
  if (copier) copier.onmessage = (event: MessageEvent<SharedBytesAsk>) => void (copierRoom += event.data.buffers);
  async function pump(offset: number, size: number) {
    const fill = filler(file.slice(offset).stream());
    for (let at = offset; ; ) {
      while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
      const { buffer, length } = await fill(free.pop() ?? new ArrayBuffer(size));
      if (copier && copierRoom > 0 && length > 0) {
        copierRoom--;
        const shared = buffer.slice(0, length);
        copier.postMessage({ type: "bytes", at, buffer: shared } satisfies SharedBytes, [shared]);
      }
      at += length;
      if (length > 0) port.postMessage({ type: "chunk", buffer, length } satisfies ReaderResponse, [buffer]);
      if (length < size) {
        copier?.postMessage({ type: "end" } satisfies SharedBytes);
        return port.postMessage({ type: "end" } satisfies ReaderResponse);
      }
    }
  }
}

/**
 * Fills whole buffers from a byte stream; a short fill means the end. A BYOB reader writes
 * straight into the buffer (no chunk allocations); streams without one get their chunks copied.
 * The copier (staging/copier.ts) reads the file with it too.
 */
export function filler(stream: ReadableStream<Uint8Array>): (buffer: ArrayBuffer) => Promise<{ buffer: ArrayBuffer; length: number }> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream in this browser: the default reader below.
  }
  const plain = byob ? undefined : stream.getReader();
  let rest: Uint8Array | undefined;
  return async (buffer) => {
    let length = 0;
    while (length < buffer.byteLength) {
      if (byob) {
        const { done, value } = await byob.read(new Uint8Array(buffer, length));
        if (value) buffer = value.buffer as ArrayBuffer; // the view's buffer was transferred
        if (done || !value) break;
        length += value.length;
      } else {
        if (!rest?.length) {
          const { done, value } = await plain!.read();
          if (done) break;
          rest = value;
        }
        const n = Math.min(rest.length, buffer.byteLength - length);
        new Uint8Array(buffer, length, n).set(rest.subarray(0, n));
        rest = rest.subarray(n);
        length += n;
      }
    }
    return { buffer, length };
  };
}

/**
 * Hasher side: the file's bytes from `offset`, as the chunks of the reader. A chunk is valid
 * until the next one is asked for (its buffer then goes back to the reader); leaving early
 * closes the port.
 */
export async function* portChunks(port: MessagePort, offset: number, bufferSize: number, buffers: number): AsyncGenerator<Uint8Array> {
  const queue: ReaderResponse[] = [];
  let wake: (() => void) | undefined;
  port.onmessage = (event: MessageEvent<ReaderResponse>) => {
    queue.push(event.data);
    wake?.();
  };
  port.postMessage({ type: "start", offset, bufferSize, buffers } satisfies ReaderRequest);
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const msg = queue.shift()!;
      if (msg.type === "end") return;
      if (msg.type === "error") throw Object.assign(new Error(`reading the file failed: ${msg.message}`), { name: msg.name });
      yield new Uint8Array(msg.buffer, 0, msg.length);
      port.postMessage({ type: "free", buffer: msg.buffer } satisfies ReaderRequest, [msg.buffer]);
    }
  } finally {
    port.close();
  }
}
