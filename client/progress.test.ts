import { expect, test } from "vitest";
import { createMeter } from "./progress.ts";

test("speed is bytes over the recent window and ETA is what remains at that speed", () => {
  const m = createMeter(1000);
  m.reset(0, 0);
  m.update(100, 1000);
  m.update(200, 2000);
  expect(m.progress(2000)).toEqual({ bytes: 200, total: 1000, bytesPerSecond: 100, etaSeconds: 8 });
});

test("a resume does not count bytes already there as speed; a stall lowers the speed", () => {
  const m = createMeter(1000, 600);
  m.reset(600, 0);
  expect(m.progress(0).bytesPerSecond).toBe(0);
  expect(m.progress(0).etaSeconds).toBeUndefined();
  m.update(700, 1000);
  expect(m.progress(1000).bytesPerSecond).toBe(100);
  expect(m.progress(4000).bytesPerSecond).toBe(25);
  m.update(1000, 5000);
  expect(m.progress(5000).etaSeconds).toBe(0);
});
