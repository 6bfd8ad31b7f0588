/**
 * Reads a request body in large chunks, and cuts it off when it stalls.
 *
 * Why large chunks: workerd hands a request body to JavaScript in 4-8 KiB pieces. Each piece
 * costs a promise turn, and the writer's loop (hash, copy, part bookkeeping) runs once per
 * piece. Measured on a 256 MiB PATCH stream through the Worker -> Durable Object hop:
 * draining with `read()` costs 8.3 ms of workerd CPU per MiB (more than SHA-256 itself, ~5),
 * `read(view, { min: 64 KiB })` 2.7 and `min: 256 KiB` 1.6. So a BYOB reader fills a reused
 * buffer up to `min` bytes per read.
 *
 * Why the idle cut-off: the Durable Object serialises an upload's requests, so a PATCH whose
 * client vanished without closing its connection (a dropped network sends no FIN; a dev proxy may
 * not pass the close on) would hold the upload's queue until some TCP timeout, and the resumed
 * client's PATCH would wait behind it. Erroring the body instead makes the writer commit what it
 * received (every complete part and the tail) and frees the queue; the client resumes from HEAD.
 *
 * The price of `min`: bytes of a read that has not reached `min` when the body stalls are not
 * seen (the spec gives no way to take a partly filled BYOB view back), so a stalled body keeps
 * all but at most its last `min` bytes and the client sends those again. And the idle timer runs
 * per read, so `min` must not outgrow the client's rate: it is sized from the rate seen so far to
 * fill in about READ_TARGET_MS (at most READ_MIN; 16 KiB for the first read). A body is cut off
 * only when a read gets nothing like that in `idleMs`, i.e. when its rate fell more than
 * idleMs / READ_TARGET_MS-fold (120x with the 30 s default) mid-read, or it stopped.
 */

/** Thrown (and the source cancelled) when a body delivers nothing for `idleMs`. */
export class BodyIdleTimeoutError extends Error {
  override readonly name = "BodyIdleTimeoutError";
  constructor(readonly idleMs: number) {
    super(`request body sent no bytes for ${idleMs} ms`);
  }
}

export interface BodyChunkOptions {
  /** Cut the body off when one read waits this long (default: never). */
  idleMs?: number;
}

const KiB = 1024;
/** The most bytes a read waits for (enough to make per-read costs vanish, see above). */
export const READ_MIN = 256 * KiB;
/** The first read of a body asks for little: its rate is not known yet. */
export const FIRST_READ_MIN = 16 * KiB;
/** How long a read should take at the rate seen so far. */
export const READ_TARGET_MS = 250;
/** The reused read buffer: several `min`s, so a read can take what has piled up. */
const READ_BUFFER = 1024 * KiB;

/**
 * The body's bytes in order, as chunks valid until the next one is requested (the buffer is
 * reused: consumers copy or hash a chunk before asking for the next). A body left early (error,
 * too large, idle) is cancelled so its source stops.
 */
export async function* bodyChunks(body: ReadableStream<Uint8Array> | Uint8Array, opts: BodyChunkOptions = {}): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    if (body.length > 0) yield body;
    return;
  }
  const byob = byobReader(body);
  const reader = byob ?? body.getReader();
  let done = false;
  try {
    let buffer = new ArrayBuffer(READ_BUFFER);
    let min = FIRST_READ_MIN;
    let received = 0;
    const started = Date.now();
    for (;;) {
      const next = await withIdle(byob ? byob.read(new Uint8Array(buffer), { min }) : (reader as ReadableStreamDefaultReader<Uint8Array>).read(), opts.idleMs);
      const value = next.value;
      received += value?.length ?? 0;
      min = nextMin(received, Date.now() - started);
      if (value && byob) buffer = value.buffer as ArrayBuffer;
      if (value && value.length > 0) yield value;
      if (next.done) {
        done = true;
        return;
      }
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
  }
}

/** What the next read waits for: about READ_TARGET_MS at the rate so far, within [1, READ_MIN]. */
export function nextMin(received: number, elapsedMs: number): number {
  const perMs = received / Math.max(elapsedMs, 1);
  return Math.max(1, Math.min(READ_MIN, Math.floor(perMs * READ_TARGET_MS)));
}

/** A BYOB reader with the Streams spec's `min` option (workerd has it; older DOM typings do not). */
interface MinReader {
  read(view: Uint8Array<ArrayBuffer>, opts: { min: number }): Promise<ReadableStreamReadResult<Uint8Array<ArrayBuffer>>>;
  cancel(reason?: unknown): Promise<void>;
}

/** A BYOB reader when the stream is a byte stream (workerd's request bodies are), else undefined. */
function byobReader(body: ReadableStream<Uint8Array>): MinReader | undefined {
  try {
    return body.getReader({ mode: "byob" }) as unknown as MinReader;
  } catch {
    return undefined; // a plain JS stream (tests, transformed bodies): read it as it comes
  }
}

async function withIdle<T>(read: Promise<T>, idleMs: number | undefined): Promise<T> {
  if (idleMs === undefined) return read;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyIdleTimeoutError(idleMs)), idleMs);
  });
  try {
    return await Promise.race([read, stalled]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/**
 * An error of the request body itself (the client's stream broke off, or stalled past the idle
 * timeout), told apart from a store fault met while the same body was being written.
 */
export class BodyReadError extends Error {
  override readonly name = "BodyReadError";
  constructor(cause: unknown) {
    super(`request body: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The body's chunks (as bodyChunks), with the body's own failures thrown as BodyReadError. */
export async function* readBody(body: ReadableStream<Uint8Array>, idleMs: number): AsyncGenerator<Uint8Array> {
  const chunks = bodyChunks(body, { idleMs });
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await chunks.next();
    } catch (err) {
      throw new BodyReadError(err);
    }
    if (next.done) return;
    yield next.value;
  }
}
