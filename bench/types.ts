/** What scenarios hand to the report, and what they get from the harness. */
import type { Baseline } from "./baseline.ts";
import type { TestFile } from "./data.ts";
import type { Stack } from "./stack.ts";

export type Direction = "higher" | "lower";

/** A target: the value (or the ratio, when `on` is "ratio") must be >= / <= `limit`. */
export interface Target {
  on: "ratio" | "value";
  direction: Direction;
  limit: number;
  /** As people read it, e.g. ">= 0.95x of raw hash-wasm". */
  text: string;
}

export interface Row {
  /** Issue 8's item number (1-7) and a short name. */
  item: number;
  metric: string;
  value: number;
  unit: string;
  baseline?: number;
  baselineLabel?: string;
  /** value / baseline, when there is a baseline. */
  ratio?: number;
  target?: Target;
  /** Undefined when the row is information only (no target). */
  pass?: boolean;
  note?: string;
}

export interface Sizes {
  hash: number;
  mainThread: number;
  upload: number;
  /** The equal-storage comparison on Ceph RGW (issue 17). */
  uploadS3: number;
  crash: number;
  finish: number;
  memory: [number, number];
}

export interface BenchContext {
  quick: boolean;
  sizes: Sizes;
  /** Temp directory for files and state; removed at the end. */
  dir: string;
  stack: Stack;
  baseline: Baseline;
  /** A seeded file of `size` bytes; each call gives new content (no dedupe across scenarios). */
  file(label: string, size: number): Promise<TestFile>;
  log(message: string): void;
  /** Records a failure that cost some rows but not the whole scenario (listed in the report). */
  error(message: string): void;
}

export interface Scenario {
  name: string;
  /** Issue 8's items this scenario measures. */
  items: number[];
  run(ctx: BenchContext): Promise<Row[]>;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Builds a row, computing the ratio and pass/fail from the target. */
/**
 * A report row with its ratio and verdict. `ratio` defaults to value / baseline; a scenario that
 * pairs its runs (item 1: both sides once per round) passes the median of the paired ratios.
 */
export function row(r: Omit<Row, "ratio" | "pass"> & { ratio?: number }): Row {
  // A baseline of about nothing (the peer re-sending a few header bytes) makes no useful ratio.
  const ratio = r.ratio ?? (r.baseline !== undefined && Math.abs(r.baseline) >= 0.01 ? r.value / r.baseline : undefined);
  let pass: boolean | undefined;
  if (r.target) {
    const x = r.target.on === "ratio" ? ratio : r.value;
    pass = x === undefined || !Number.isFinite(x) ? false : r.target.direction === "higher" ? x >= r.target.limit : x <= r.target.limit;
  }
  return { ...r, ratio, pass };
}

/** MB/s with MB = 10^6 bytes, as the design's measured speeds are written. */
export const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
