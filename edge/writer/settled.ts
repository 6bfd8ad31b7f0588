/**
 * Waits for every promise, then throws the first failure, else returns every value in order.
 * Not Promise.all, which rejects while the other writes are still on their way: the caller would
 * go on (the client resumes, the upload finishes and its keys are removed) and a write landing
 * late would leave a key behind, or put an older record over a newer one.
 */
export async function settled<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  for (const result of results) {
    if (result.status === "rejected") throw result.reason;
  }
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
