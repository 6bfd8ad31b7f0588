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
 * also copied into this browser alongside the hash (staging/pass.ts), the hasher may pass a
 * hashed buffer on to the copier instead, which returns it here once written, on a port of its
 * own: the file is read once for both, and no byte is copied between threads.
 */

export type ReaderRequest = { type: "start"; offset: number; bufferSize: number; buffers: number } | { type: "free"; buffer: ArrayBuffer };

export type ReaderResponse = { type: "chunk"; buffer: ArrayBuffer; length: number } | { type: "end" } | { type: "error"; name: string; message: string };

/** Reader side: fills buffers from `file` at the offset the hasher asks for, at most `buffers` out at once; `returns` is where the copier gives buffers back (above). */
export function serveFile(file: Blob, port: MessagePort, returns?: MessagePort): void {
  const free: ArrayBuffer[] = [];
  let credits = 0;
  let wake: (() => void) | undefined;
  const freed = (buffer: ArrayBuffer) => {
    free.push(buffer);
    credits++;
    wake?.();
  };
  if (returns) returns.onmessage = (event: MessageEvent<ReaderRequest>) => event.data.type === "free" && freed(event.data.buffer);
  port.onmessage = (event: MessageEvent<ReaderRequest>) => {
    const msg = event.data;
    if (msg.type === "free") return freed(msg.buffer);
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
  async function pump(offset: number, size: number) {
    const fill = filler(file.slice(offset).stream());
    for (;;) {
      while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
      const { buffer, length } = await fill(free.pop() ?? new ArrayBuffer(size));
      if (length > 0) port.postMessage({ type: "chunk", buffer, length } satisfies ReaderResponse, [buffer]);
      if (length < size) return port.postMessage({ type: "end" } satisfies ReaderResponse);
    }
  }
}

/**
 * Fills whole buffers (or their first `want` bytes) from a byte stream; a short fill means the
 * end. A BYOB reader writes straight into the buffer (no chunk allocations); streams without one
 * get their chunks copied. The copier (staging/copy-source.ts) reads the file with it too.
 */
export function filler(stream: ReadableStream<Uint8Array>): (buffer: ArrayBuffer, want?: number) => Promise<{ buffer: ArrayBuffer; length: number }> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream in this browser: the default reader below.
  }
  const plain = byob ? undefined : stream.getReader();
  let rest: Uint8Array | undefined;
  return async (buffer, want = buffer.byteLength) => {
    let length = 0;
    while (length < want) {
      if (byob) {
        const { done, value } = await byob.read(new Uint8Array(buffer, length, want - length));
        if (value) buffer = value.buffer as ArrayBuffer; // the view's buffer was transferred
        if (done || !value) break;
        length += value.length;
      } else {
        if (!rest?.length) {
          const { done, value } = await plain!.read();
          if (done) break;
          rest = value;
        }
        const n = Math.min(rest.length, want - length);
        new Uint8Array(buffer, length, n).set(rest.subarray(0, n));
        rest = rest.subarray(n);
        length += n;
      }
    }
    return { buffer, length };
  };
}

/**
 * Where a hashed buffer may go instead of back to the reader: true when `pass` took it (and
 * transferred it). `at` is the file offset of its first byte.
 */
export type PassOn = (at: number, buffer: ArrayBuffer, length: number) => boolean | Promise<boolean>;

/**
 * Hasher side: the file's bytes from `offset`, as the chunks of the reader. A chunk is valid
 * until the next one is asked for (its buffer then goes to `pass`, or back to the reader);
 * leaving early closes the port.
 */
export async function* portChunks(port: MessagePort, offset: number, bufferSize: number, buffers: number, pass?: PassOn): AsyncGenerator<Uint8Array> {
  const queue: ReaderResponse[] = [];
  let wake: (() => void) | undefined;
  port.onmessage = (event: MessageEvent<ReaderResponse>) => {
    queue.push(event.data);
    wake?.();
  };
  port.postMessage({ type: "start", offset, bufferSize, buffers } satisfies ReaderRequest);
  try {
    for (let at = offset; ; ) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const msg = queue.shift()!;
      if (msg.type === "end") return;
      if (msg.type === "error") throw Object.assign(new Error(`reading the file failed: ${msg.message}`), { name: msg.name });
      yield new Uint8Array(msg.buffer, 0, msg.length);
      if (!(await pass?.(at, msg.buffer, msg.length))) port.postMessage({ type: "free", buffer: msg.buffer } satisfies ReaderRequest, [msg.buffer]);
      at += msg.length;
    }
  } finally {
    port.close();
  }
}
