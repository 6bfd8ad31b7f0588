/**
 * Speed and ETA for one process: bytes over a sliding window of the last few seconds, so a
 * stall shows as a falling speed instead of a frozen number, and a resume does not count the
 * bytes that were already there as instantly transferred.
 */
import type { Progress } from "./types.ts";

const WINDOW_MS = 5000;

export interface Meter {
  /** Sets the current byte count (monotonic within a run). */
  update(bytes: number, now?: number): void;
  /** Starts a new window at `bytes` (after a pause or resume). */
  reset(bytes: number, now?: number): void;
  progress(now?: number): Progress;
}

export function createMeter(total: number, initial = 0): Meter {
  let samples: Array<{ t: number; bytes: number }> = [];
  let bytes = initial;
  return {
    update(value, now = Date.now()) {
      bytes = value;
      samples.push({ t: now, bytes: value });
      while (samples.length > 2 && (samples[0]?.t ?? now) < now - WINDOW_MS) samples.shift();
    },
    reset(value, now = Date.now()) {
      bytes = value;
      samples = [{ t: now, bytes: value }];
    },
    progress(now = Date.now()) {
      const first = samples[0];
      const elapsed = first ? (now - first.t) / 1000 : 0;
      const bytesPerSecond = first && elapsed > 0.2 ? Math.max(0, (bytes - first.bytes) / elapsed) : 0;
      const remaining = total - bytes;
      const etaSeconds = remaining <= 0 ? 0 : bytesPerSecond > 0 ? remaining / bytesPerSecond : undefined;
      return { bytes, total, bytesPerSecond, etaSeconds };
    },
  };
}

/** Sleeps so that `bytes` since `started` average at most `rate` bytes per second. */
export async function delayForRate(started: number, bytes: number, rate: number): Promise<void> {
  const wait = started + (bytes / rate) * 1000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}
