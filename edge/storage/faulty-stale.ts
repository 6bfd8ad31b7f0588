/**
 * The stale reads of the fault-injecting driver (./faulty.ts): what an eventually consistent,
 * S3-like store may answer shortly after a write. Before each write the key's state is kept
 * (absent, or its info and bytes); for the next `window` operations a read of that key may be
 * answered from one of those older states: an older version of an overwritten key, "not found"
 * for a created one, a deleted key still there.
 */
import { bytesStream, readAll } from "./body.ts";
import {
  PathNotFoundError,
  resolveRange,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListResult,
  type ObjectInfo,
  type StorageDriver,
} from "./driver.ts";

/** One older state of a key: absent, or its bytes and info (undefined bytes: too big to keep). */
type Version = { absent: true } | { absent: false; info: ObjectInfo; bytes: Uint8Array | undefined };

interface HistoryEntry {
  /** The operation index at which this version was replaced. */
  replacedAt: number;
  version: Version;
}

export interface StaleReadOptions {
  /** Keep history at all (only while stale reads may be drawn). */
  enabled: boolean;
  /** How many later operations may still see an older state. */
  window: number;
  /** Older versions larger than this are not kept (only "absent" is remembered). */
  maxBytes: number;
}

/** The per-key history of replaced versions, and the stale answers drawn from it. */
export class StaleReads {
  private readonly history = new Map<string, HistoryEntry[]>();

  constructor(
    private readonly inner: StorageDriver,
    private readonly options: StaleReadOptions,
    /** The schedule's PRNG: which older version answers. */
    private readonly random: () => number,
    /** The operation count so far: the clock the window is measured on. */
    private readonly now: () => number,
  ) {}

  /** Runs a write to `keys`, keeping their earlier states for stale reads. */
  async writing<T>(keys: string[], effect: () => Promise<T>): Promise<T> {
    if (!this.options.enabled) return effect();
    for (const k of keys) await this.remember(k);
    return effect();
  }

  /** An older answer to `stat`, undefined when there is none; "absent" throws PathNotFoundError. */
  async info(key: string): Promise<ObjectInfo | undefined> {
    const v = this.version(key);
    if (!v) return undefined;
    if (v.absent) throw new PathNotFoundError(key, this.inner.name);
    return v.info;
  }

  /** An older answer to `get` (when its bytes were kept), as `info` for the rest. */
  async get(key: string, range: ByteRange | undefined): Promise<GetResult | undefined> {
    const v = this.version(key);
    if (!v) return undefined;
    if (v.absent) throw new PathNotFoundError(key, this.inner.name);
    if (!v.bytes) return undefined;
    if (!range) return { ...v.info, body: bytesStream(v.bytes) };
    const r = resolveRange(key, this.inner.name, v.bytes.length, range);
    return { ...v.info, body: bytesStream(v.bytes.slice(r.offset, r.offset + r.length)), range: r };
  }

  /**
   * A listing that still shows recently deleted keys and misses recently created ones. Only whole
   * listings (one page, no cursor) are disturbed: pages of a stale listing would need a consistent
   * snapshot to paginate, and the upload prefixes listed here fit one page.
   */
  async list(prefix: string, listOptions: ListOptions | undefined): Promise<ListResult | undefined> {
    if (listOptions?.cursor !== undefined) return undefined;
    const changed = [...this.history.keys()].filter((k) => k.startsWith(prefix) && this.recent(k).length > 0);
    if (changed.length === 0) return undefined;
    const page = await this.inner.list(prefix, listOptions);
    if (page.cursor !== undefined) return undefined;
    const keys = new Set(page.keys);
    for (const k of changed) {
      const v = this.version(k);
      if (!v) continue;
      if (v.absent) keys.delete(k);
      else keys.add(k);
    }
    return { keys: [...keys].sort() };
  }

  /** Remembers the state of `key` as it was before a write the caller is about to make. */
  private async remember(key: string): Promise<void> {
    let version: Version;
    try {
      const info = await this.inner.stat(key);
      const bytes = info.size <= this.options.maxBytes ? await readAll((await this.inner.get(key)).body) : undefined;
      version = { absent: false, info, bytes };
    } catch (err) {
      if (!(err instanceof PathNotFoundError)) return;
      version = { absent: true };
    }
    const entries = this.history.get(key) ?? [];
    entries.push({ replacedAt: this.now(), version });
    this.history.set(key, entries);
  }

  /** The versions of `key` replaced within the window, oldest first. */
  private recent(key: string): HistoryEntry[] {
    const entries = this.history.get(key);
    if (!entries) return [];
    const live = entries.filter((e) => this.now() - e.replacedAt <= this.options.window);
    if (live.length === 0) this.history.delete(key);
    else this.history.set(key, live.slice(-4));
    return live;
  }

  /** One of the recent versions of `key`, drawn at random. */
  private version(key: string): Version | undefined {
    const live = this.recent(key);
    return live[Math.floor(this.random() * live.length)]?.version;
  }
}
