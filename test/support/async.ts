/** Small async helpers shared by tests that hold work back and wait for it to get somewhere. */

/** A promise with its resolve/reject exposed, to gate a step of the code under test. */
export function deferred() {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Polls `cond` every `everyMs` until it holds; throws after `tries` polls. */
export async function until(cond: () => boolean, everyMs = 2, tries = 2000): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > tries) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
