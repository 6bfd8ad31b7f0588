/**
 * A request body that errors when no bytes arrive for a while.
 *
 * Why: the Durable Object serialises an upload's requests, so a PATCH whose client vanished
 * without closing its connection (a dropped network sends no FIN; a dev proxy may not pass the
 * close on) would hold the upload's queue until some TCP timeout, and the resumed client's PATCH
 * would wait behind it. Erroring the body instead makes the writer commit what it received
 * (every complete part and the tail) and frees the queue; the client resumes from HEAD's offset.
 */

/** Thrown into the body stream when it stalls. */
export class BodyIdleTimeoutError extends Error {
  override readonly name = "BodyIdleTimeoutError";
  constructor(readonly idleMs: number) {
    super(`request body sent no bytes for ${idleMs} ms`);
  }
}

/** Wraps `body` so that a gap of `idleMs` between chunks errors it (and cancels the source). */
export function withIdleTimeout(body: ReadableStream<Uint8Array>, idleMs: number): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BodyIdleTimeoutError(idleMs)), idleMs);
      });
      try {
        const { done, value } = await Promise.race([reader.read(), stalled]);
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        controller.error(err);
        reader.cancel(err).catch(() => undefined);
      } finally {
        if (timer !== undefined) clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
