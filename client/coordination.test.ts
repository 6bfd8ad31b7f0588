import { expect, test } from "vitest";
import { createLocalLocks, createLocks, createSlots } from "./coordination.ts";

for (const [name, make] of [
  ["local", createLocalLocks],
  ["navigator.locks", () => createLocks()],
] as const) {
  test(`${name}: a held lock is refused to a second taker, who gets it once released`, async () => {
    const locks = make();
    const first = await locks.tryAcquire("k");
    expect(first).toBeTypeOf("function");
    expect(await locks.tryAcquire("k")).toBeUndefined();
    let granted = false;
    const waiting = locks.acquire("k", new AbortController().signal).then((release) => {
      granted = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(granted).toBe(false);
    first?.();
    const second = await waiting;
    expect(granted).toBe(true);
    second();
    (await locks.tryAcquire("k"))?.();
  });
}

test("slots: at most n at once, the next one starts when one is released", async () => {
  const slots = createSlots(2);
  const signal = new AbortController().signal;
  const a = await slots.acquire(signal);
  await slots.acquire(signal);
  expect(slots.available()).toBe(false);
  let third = false;
  const pending = slots.acquire(signal).then(() => (third = true));
  await Promise.resolve();
  expect(third).toBe(false);
  a();
  a(); // releasing twice frees one slot only
  await pending;
  expect(third).toBe(true);
  expect(slots.available()).toBe(false);
});
