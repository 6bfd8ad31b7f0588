/**
 * The running phase of one upload (upload.ts): make sure the digest is known (kept from an
 * earlier session, or hashed now, before or alongside the transfer), then transfer until the edge
 * has the whole file, and check that the edge's digest is ours. The hash and transfer runs are
 * stored on the phase's Work, so a pause or cancel can stop them.
 */
import type { Sha256Digest } from "../shared/digest.ts";
import type * as tus from "tus-js-client";
import type { Release } from "./coordination.ts";
import * as errors from "./errors.ts";
import type { HashRun } from "./hashing/hasher.ts";
import type { RecordKeeper } from "./persist/records.ts";
import type { createMeter } from "./progress.ts";
import { chooseChunkSize } from "./tus/edge-limits.ts";
import { startTransfer, type TransferInput, type TransferResult, type TransferRun } from "./tus/transfer.ts";
import type { StageEvent } from "./staging/opfs.ts";
import type { RetryState, StagedState, UploadError } from "./types.ts";
import type { UploadContext } from "./upload.ts";

/** What a working phase holds; it is released or stopped when the phase ends. */
export interface Work {
  readonly stop: AbortController;
  lock: Release | undefined;
  hashRun?: HashRun;
  transferRun?: TransferRun;
  /** The drive loop of this work; settles however it ends. */
  driven?: Promise<void>;
  /** Set once the drive loop ended (the phase may still name this work until pause or cancel moves on). */
  ended: boolean;
}

/** Thrown through a run that was stopped on purpose (pause, cancel, dispose): not a failure. */
export class Stopped extends Error {}

/** Where this session stands, for the snapshot: progress, what it resumed from, what it waits for. */
export interface SessionView {
  hash: ReturnType<typeof createMeter>;
  transfer: ReturnType<typeof createMeter>;
  counters: { hashRead: number; sent: number };
  resumedHashAt?: number;
  resumedUploadAt?: number;
  /** An error that did not stop the upload. */
  notice?: UploadError;
  /** Set while the transfer waits to try a failed request again. */
  retrying?: RetryState;
  /** Runs started in this session: only the first one can be a resume. */
  runs: number;
  /** The copy kept in this browser (staging/); undefined where there is none to speak of (Node). */
  staged?: StagedState;
  /** This session reads the copy kept in this browser, not the person's file. */
  fromCopy?: boolean;
}

/** What a run works with: the upload's context, record and view, and how it reports. */
export interface RunScope {
  ctx: UploadContext;
  key: string;
  size: number;
  /** The upload came from an earlier session (a kept digest is then a resumed hash). */
  fromEarlierSession: boolean;
  records: RecordKeeper;
  view: SessionView;
  urlStorage: tus.UrlStorage;
  changed(urgent: boolean): void;
  /** The edge lost the upload; the transfer starts a new one. */
  gone(status: number): void;
}

type Finished = Extract<TransferResult, { kind: "done" }>;

interface TransferPlan {
  file: Blob;
  chunkSize: number;
  digest: Promise<Sha256Digest>;
  first: boolean;
}

/** Runs the upload to the end: the verified digest and the blob's URL, or a throw (Stopped or a failure). */
export async function runUpload(scope: RunScope, work: Work, file: Blob): Promise<{ digest: Sha256Digest; blobUrl: string; uploadUrl: string }> {
  const { ctx, size, records, view } = scope;
  const first = view.runs++ === 0;
  const chunkSize = chooseChunkSize(ctx.chunkSize, await ctx.limits());
  const digest = ensureDigest(scope, work, file, first);
  const hashFirst = ctx.hashFirst === true || (typeof ctx.hashFirst === "number" && size <= ctx.hashFirst) || size === 0;
  if (!records.current.digest && hashFirst) await digest;
  if (work.stop.signal.aborted) throw new Stopped();
  const result = await transferLoop(scope, work, { file, chunkSize, digest, first });
  const ours = await digest;
  if (result.digest && result.digest !== ours) throw new errors.UploadFailure(errors.digestMismatch(result.digest, ours));
  view.transfer.update(size);
  return { digest: ours, blobUrl: result.blobUrl ?? new URL(`/blobs/${ours}`, ctx.endpoint).toString(), uploadUrl: result.uploadUrl };
}

/** The digest: kept from an earlier session, or hashed now (the hash run belongs to the work). */
async function ensureDigest(scope: RunScope, work: Work, file: Blob, first: boolean): Promise<Sha256Digest> {
  const { ctx, key, size, records, view, changed } = scope;
  const known = records.current.digest;
  if (known) {
    if (first && scope.fromEarlierSession) view.resumedHashAt = size;
    view.hash.reset(size);
    return known;
  }
  const stage = await admitStaging(scope);
  if (work.stop.signal.aborted) throw new Stopped();
  const hashReadBefore = view.counters.hashRead;
  work.hashRun = ctx.hasher.start({
    key,
    file,
    checkpointInterval: ctx.checkpointInterval,
    rate: ctx.limitRate?.hash,
    stage,
    onStage: (event) => {
      view.staged = stagedAfter(event);
      changed(event.kind !== "written"); // a copy's progress goes out with the next tick
    },
    onStart: (at) => {
      if (first && at !== undefined) view.resumedHashAt = at;
      view.hash.reset(at ?? 0);
      changed(true);
    },
    onProgress: (offset, read) => {
      view.hash.update(offset);
      view.counters.hashRead = hashReadBefore + read;
      changed(false);
    },
  });
  return work.hashRun.result.then(async (r) => {
    if (r.kind !== "done") throw new Stopped();
    view.hash.update(size);
    await records.patch({ digest: r.digest, hashedTo: size });
    changed(true); // hashing -> uploading
    return r.digest;
  });
}

/**
 * Whether this hash run also keeps a copy of the file in this browser: not when staging is off or
 * absent, not when the bytes come from that copy already, and not over the limit or the quota
 * (the row then says why, and the upload goes on as it would without staging).
 */
async function admitStaging(scope: RunScope): Promise<boolean> {
  const { ctx, key, size, view } = scope;
  const staging = ctx.staging;
  if (!staging || staging === "off" || view.fromCopy) return false;
  const admitted = await staging.admit(key, size).catch(() => ({ kind: "unavailable" }) as const);
  view.staged = admitted.kind === "stage" ? { kind: "writing", bytes: 0 } : admitted;
  scope.changed(true);
  return admitted.kind === "stage";
}

function stagedAfter(event: StageEvent): StagedState {
  switch (event.kind) {
    case "written":
      return { kind: "writing", bytes: event.offset };
    case "whole":
      return { kind: "kept" };
    case "stopped":
      return event.why === "full" ? { kind: "full" } : event.why === "slow" ? { kind: "slow" } : { kind: "unavailable" };
  }
}

/** Transfers until the edge has the whole file; an upload the edge lost starts again from 0, twice at most. */
async function transferLoop(scope: RunScope, work: Work, plan: TransferPlan): Promise<Finished> {
  const { records, view } = scope;
  // A hashing failure (unreadable file) stops the transfer too.
  const hashFailure = plan.digest.then(
    () => new Promise<never>(() => {}),
    (error: unknown) => {
      work.transferRun?.pause();
      throw error;
    },
  );
  hashFailure.catch(() => {});
  for (let attempt = 0; ; attempt++) {
    // Only a URL stored by an earlier session is a resume (a dedupe at creation also HEADs).
    const resuming = plan.first && attempt === 0 && records.current.uploadUrl !== undefined;
    work.transferRun = startTransfer(transferInput(scope, plan, resuming));
    const result = await Promise.race([work.transferRun.result, hashFailure]).finally(() => {
      view.retrying = undefined; // whatever ended the transfer, it no longer waits for a retry
    });
    if (result.kind === "paused" || work.stop.signal.aborted) throw new Stopped();
    if (result.kind === "done") return result;
    scope.gone(result.status);
    await records.patch({ uploadUrl: undefined, uploadedTo: 0 });
    view.transfer.reset(0);
    if (attempt >= 2) throw new errors.UploadFailure(errors.uploadKeptGone());
  }
}

function transferInput(scope: RunScope, plan: TransferPlan, resuming: boolean): TransferInput {
  const { ctx, view, records, changed } = scope;
  const { name, type, digest } = records.current;
  return {
    key: scope.key,
    file: plan.file,
    size: scope.size,
    name,
    type,
    endpoint: ctx.endpoint,
    chunkSize: plan.chunkSize,
    retry: ctx.retry,
    token: ctx.token,
    urlStorage: scope.urlStorage,
    digest,
    waitForDigest: () => plan.digest,
    toBody: ctx.toBody,
    rate: ctx.limitRate?.transfer,
    onResumed: (offset) => {
      if (resuming && view.resumedUploadAt === undefined) view.resumedUploadAt = offset;
      view.transfer.reset(offset);
      changed(true);
    },
    onGone: (status) => scope.gone(status),
    onProgress: (offset) => {
      view.transfer.update(offset);
      changed(false);
    },
    onChunkComplete: (offset) => void records.patch({ uploadedTo: offset }),
    onSend: (bytes) => void (view.counters.sent += bytes),
    onRetry: (state) => {
      view.retrying = state;
      changed(true);
    },
  };
}
