/**
 * Speed and ETA for one process: bytes over a sliding window of the last few seconds, so a
 * stall shows as a falling speed instead of a frozen number, and a resume does not count the
 * bytes that were already there as instantly transferred. Also the one way sizes, speeds and
 * times are written for people (the page, the CLI and error messages share it), and the rate cap.
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

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** `1536` -> `1.5 KiB`. Binary units, because file sizes and the edge's part size are binary. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** `8 MiB/s`; empty while nothing moves. */
export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : "";
}

/**
 * How long, for a person: "8 s", "3 min", "1 h 5 min". `precision` "s" keeps the seconds under an
 * hour ("1 min 15 s"), for a countdown; "min" rounds to whole minutes past the first one, for a
 * wait or a span that is approximate anyway.
 */
export function formatDuration(ms: number, precision: "s" | "min" = "min"): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = precision === "s" ? Math.floor(s / 60) : Math.round(s / 60);
  if (min < 60) return precision === "s" ? `${min} min ${s % 60} s` : `${min} min`;
  return `${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ""}`;
}

/** `75` -> `1 min 15 s left`; empty when unknown. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "";
  return `${formatDuration(seconds * 1000, "s")} left`;
}

export function percent(bytes: number, total: number): number {
  if (total <= 0) return bytes >= total ? 100 : 0;
  return Math.min(100, Math.floor((bytes / total) * 100));
}
