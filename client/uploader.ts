/**
 * The uploader: the list of uploads, the public API, and event throttling. Platform parts
 * (store, hasher, body conversion) come in through `UploaderPlatform`, so the same core runs
 * in browsers (client/index.ts) and Node (client/node.ts).
 */
import { createLocks, createSlots, type Locks } from "./coordination.ts";
import { discoverLimits, type EdgeLimits } from "./tus/edge-limits.ts";
import { fingerprint } from "./fingerprint.ts";
import type { Hasher } from "./hashing/hasher.ts";
import { createRetryPolicy, fixedDelayPolicy, type RetryPolicy } from "./retry.ts";
import { RECORD_VERSION, type UploadRecord, type UploadStore } from "./persist/records.ts";
import { fileUnreadable, notTheInterruptedFile, toUploadError } from "./errors.ts";
import { createUpload, handlePermission, type UploadContext, type UploadController, type UploadStart } from "./upload.ts";
import type { Staging } from "./staging/staging.ts";
import type { StagedState, UploaderEvent, UploaderOptions, UploadSnapshot } from "./types.ts";

const MiB = 1024 * 1024;
/** Change events while work runs: at most this often per upload, and at least this often. */
const TICK_MS = 250;

export interface Uploader {
  /** Same fingerprint continues its existing row (never a second row); a different file with
   * the same name as an interrupted row is refused (an "error" event FILE_CHANGED on that row). */
  add(files: Iterable<File | FileSystemFileHandle>): Promise<UploadSnapshot[]>;
  /** Interrupted uploads from the store after a reload (state interrupted). */
  restore(): Promise<UploadSnapshot[]>;
  list(): UploadSnapshot[];
  pause(key: string): Promise<void>;
  /** Call from a click: may request the kept handle's permission. */
  resume(key: string): Promise<void>;
  /** Stops it and removes the upload on the edge (DELETE). */
  cancel(key: string): Promise<void>;
  on(listener: (event: UploaderEvent) => void): () => void;
  destroy(): void;
}

export interface UploaderPlatform {
  store: UploadStore;
  hasher: Hasher;
  locks?: Locks;
  /** Turns bytes [start, end) of the file into a request body: Node's http stack wants a stream, not a Blob. */
  toBody?: (file: Blob, start: number, end: number) => Promise<unknown>;
  /** Base for a relative endpoint (the page's URL in browsers). */
  baseUrl?: string;
  /** Tries of a failing request when the options do not say (browsers: Infinity, Node: bounded). */
  defaultMaxAttempts?: number;
  /** Browsers: copies kept in OPFS (staging/), or "off" (option `staging: false`). Node has none. */
  staging?: Staging | "off";
}

/** `retry` wins; the deprecated `retryDelays` alone keeps its old meaning (fixed waits, then fail). */
export function retryPolicyFor(options: Pick<UploaderOptions, "retry" | "retryDelays">, defaultMaxAttempts?: number): RetryPolicy {
  if (!options.retry && options.retryDelays) return fixedDelayPolicy(options.retryDelays);
  return createRetryPolicy({ ...options.retry, maxAttempts: options.retry?.maxAttempts ?? defaultMaxAttempts });
}

export function createUploaderCore(options: UploaderOptions, platform: UploaderPlatform): Uploader {
  const uploads = new Map<string, UploadController>();
  const events = createEventHub(uploads);
  const ctx = uploadContext(options, platform, events);
  const get = (key: string) => {
    const u = uploads.get(key);
    if (!u) throw new Error(`no upload ${key}`);
    return u;
  };

  return {
    async add(files) {
      const out: UploadSnapshot[] = [];
      for (const item of files) {
        try {
          const snapshot = await addOne(ctx, uploads, item);
          if (snapshot) out.push(snapshot);
        } catch (error) {
          events.emit({ type: "error", upload: placeholder(item.name), error: toUploadError(error) });
        }
      }
      return out;
    },
    restore: () => restoreFromRecords(ctx, uploads, events),
    list: () => [...uploads.values()].map((u) => u.snapshot()),
    pause: (key) => get(key).pause(),
    resume: (key) => get(key).resume(),
    cancel: (key) => get(key).cancel(),
    on: (listener) => events.on(listener),
    destroy() {
      events.stopBeat();
      for (const u of uploads.values()) u.dispose();
      events.clear();
    },
  };
}

/** The uploader's listeners and its progress beat. */
interface EventHub {
  emit(event: UploaderEvent): void;
  /** A change event for this upload now (a state change). */
  emitChange(u: UploadController): void;
  /** Progress: the next beat emits it. */
  markDirty(key: string): void;
  on(listener: (event: UploaderEvent) => void): () => void;
  stopBeat(): void;
  clear(): void;
}

function createEventHub(uploads: ReadonlyMap<string, UploadController>): EventHub {
  const listeners = new Set<(event: UploaderEvent) => void>();
  const dirty = new Set<string>();
  const lastEmit = new Map<string, number>();
  const emit = (event: UploaderEvent) => {
    for (const listener of listeners) listener(event);
  };
  const emitChange = (u: UploadController) => {
    dirty.delete(u.key);
    lastEmit.set(u.key, Date.now());
    emit({ type: "change", upload: u.snapshot() });
  };
  // Progress goes out on a fixed beat: <= 4 per second per upload, and every 250 ms while an
  // upload works even when no byte moved (a stalled upload's speed then visibly falls).
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const u of uploads.values()) {
      if ((dirty.has(u.key) || u.phase() === "running") && now - (lastEmit.get(u.key) ?? 0) >= TICK_MS - 20) emitChange(u);
    }
  }, TICK_MS);
  (ticker as { unref?: () => void }).unref?.(); // Node: never keep the process alive for this
  return {
    emit,
    emitChange,
    markDirty: (key) => dirty.add(key),
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stopBeat: () => clearInterval(ticker),
    clear: () => listeners.clear(),
  };
}

function uploadContext(options: UploaderOptions, platform: UploaderPlatform, events: EventHub): UploadContext {
  const endpoint = new URL(options.endpoint, platform.baseUrl).toString();
  let limits: Promise<EdgeLimits> | undefined;
  return {
    store: platform.store,
    hasher: platform.hasher,
    endpoint,
    limits: () => (limits ??= discoverLimits(endpoint)),
    token: options.token,
    chunkSize: options.chunkSize,
    retry: retryPolicyFor(options, platform.defaultMaxAttempts),
    checkpointInterval: options.checkpointInterval,
    // Up to 1 GiB (a few seconds of hashing) the digest is declared at creation: the edge then
    // dedupes a blob it already has with nothing sent, and its multipart upload targets the blob
    // path directly, so the finish needs no copy (on the R2 binding a copy streams every byte
    // through the worker again: bench item 6 measured ~60 s for 1 GiB locally).
    hashFirst: options.hashFirst ?? 1024 * MiB,
    limitRate: options.limitRate,
    toBody: platform.toBody,
    staging: platform.staging,
    locks: platform.locks ?? createLocks(),
    slots: createSlots(options.concurrency ?? 2),
    changed(u, urgent) {
      if (urgent) events.emitChange(u);
      else events.markDirty(u.key);
    },
    failed(u, error) {
      events.emit({ type: "error", upload: u.snapshot(), error });
    },
  };
}

async function open(item: File | FileSystemFileHandle): Promise<{ file: File; handle?: FileSystemFileHandle }> {
  if (item instanceof Blob) return { file: item };
  return { file: await item.getFile(), handle: item };
}

/** One added file: continues its row, is refused for another's interrupted row, or starts a new upload. */
async function addOne(ctx: UploadContext, uploads: Map<string, UploadController>, item: File | FileSystemFileHandle): Promise<UploadSnapshot | undefined> {
  const { file, handle } = await open(item);
  const key = await fingerprint(file);
  const existing = uploads.get(key);
  // A failed or cancelled row is replaced by a new upload of the file.
  if (existing && existing.phase() !== "failed" && existing.phase() !== "cancelled") {
    if (existing.phase() === "done" || existing.active()) return existing.snapshot();
    await existing.start(file, handle);
    return existing.snapshot();
  }
  // A file with the name of an interrupted upload but another fingerprint is another file:
  // it must not continue that upload, and silently starting a second one confuses people.
  for (const other of uploads.values()) {
    if (other.key !== key && other.name === file.name && other.phase() === "interrupted") {
      ctx.failed(other, notTheInterruptedFile(file.name));
      return undefined;
    }
  }
  const stored = await ctx.store.get(key);
  const record: UploadRecord = stored ?? {
    v: RECORD_VERSION,
    key,
    name: file.name,
    size: file.size,
    type: file.type,
    lastModified: file.lastModified,
    createdAt: Date.now(),
  };
  const peek = stored ? await ctx.hasher.peek(key, file.size).catch(() => undefined) : undefined;
  const u = createUpload(ctx, record, stored ? { kind: "interrupted", reason: "reload", hashedTo: peek?.offset } : { kind: "new" });
  uploads.set(key, u);
  await u.start(file, handle);
  return u.snapshot();
}

/** A row for each stored record not on the list yet (state interrupted), then the sweep of orphaned copies. */
async function restoreFromRecords(ctx: UploadContext, uploads: Map<string, UploadController>, events: EventHub): Promise<UploadSnapshot[]> {
  const out: UploadSnapshot[] = [];
  const records = await ctx.store.list();
  for (const record of records) {
    if (uploads.has(record.key)) continue;
    const u = createUpload(ctx, record, await restartOf(ctx, record));
    uploads.set(record.key, u);
    out.push(u.snapshot());
    events.emitChange(u);
  }
  // Copies of uploads that no longer exist (done or cancelled while a removal failed, or
  // records of another format version dropped) would only hold the person's disk.
  const staging = ctx.staging;
  if (staging && staging !== "off") await staging.sweep(new Set([...records.map((r) => r.key), ...uploads.keys()])).catch(() => undefined);
  return out;
}

/** How a stored upload comes back: what it lacks to go on (file, permission), how far it was hashed, its kept copy. */
async function restartOf(ctx: UploadContext, record: UploadRecord): Promise<UploadStart> {
  let reason: "reload" | "needs-file" | "needs-permission" = "needs-file";
  if (record.handle) {
    const permission = await handlePermission(record.handle, false).catch(() => "denied" as const);
    reason = permission === "granted" ? "reload" : "needs-permission";
  }
  const peek = await ctx.hasher.peek(record.key, record.size).catch(() => undefined);
  const kept = await keptCopy(ctx.staging, record, reason === "reload");
  return { kind: "interrupted", reason: kept.copy ? "reload" : reason, hashedTo: peek?.offset, ...kept };
}

/**
 * The copy kept in this browser for an interrupted upload: the source when no usable handle is
 * (no file to find, no permission prompt), and what the row says about it. A copy that fails the
 * fingerprint check was removed by open() and is not used: the row asks for the file.
 */
async function keptCopy(staging: UploadContext["staging"], record: UploadRecord, hasUsableHandle: boolean): Promise<{ copy?: File; staged?: StagedState }> {
  if (!staging || staging === "off") return {};
  const found = await staging.open(record).catch(() => ({ kind: "missing" }) as const);
  switch (found.kind) {
    case "ok":
      return hasUsableHandle ? { staged: { kind: "kept" } } : { copy: found.file, staged: { kind: "kept" } };
    case "unusable":
      return { staged: { kind: "unusable" } };
    case "partial":
    case "missing":
      return { staged: { kind: "none" } };
  }
}

/** An error about a file that never became a row (for example it could not be read at all). */
function placeholder(name: string): UploadSnapshot {
  const empty = { bytes: 0, total: 0, bytesPerSecond: 0, etaSeconds: undefined };
  return {
    key: "",
    name,
    size: 0,
    type: "",
    lastModified: 0,
    state: { kind: "failed", error: fileUnreadable() },
    hash: empty,
    transfer: empty,
    hasHandle: false,
    counters: { hashRead: 0, sent: 0 },
  };
}
