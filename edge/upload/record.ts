/**
 * What an upload session keeps in its Durable Object's storage (SessionRecord), the part of that
 * storage it uses (SessionStorage), and an in-memory stand-in for tests. The record is the commit
 * point for what the bucket cannot tell: owner, expiry, the finished digest after the upload's
 * keys are gone.
 */
import type { Sha256Digest } from "../../shared/digest.ts";

/** The part of a Durable Object's `ctx.storage` a session uses. */
export interface SessionStorage {
  get<T>(key: string): Promise<T | undefined>;
  put<T>(key: string, value: T): Promise<void>;
  deleteAll(): Promise<void>;
  getAlarm(): Promise<number | null>;
  setAlarm(epochMs: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** One upload as its session records it (the writer's own state is its UploadInfo, in the bucket). */
export interface SessionRecord {
  id: string;
  namespace: string;
  length: number;
  declaredDigest?: Sha256Digest;
  metadata: string;
  expiresAt: number;
  /** Set once the writer's keys exist: from then on a missing `info` is a stale read or a lost store, never "unknown". */
  created?: true;
  /**
   * The highest offset a client was told, all committed: a writer resumed below it read an older
   * `info` (a stale read of an eventually consistent store), and answering from it would move a
   * tus client's offset back.
   */
  committed?: number;
  /** Set before the upload's keys are removed (DELETE, expiry): a crash half-way still ends in removal. */
  removing?: true;
  /** Set before a write that may bring the offset to the length: the alarm then checks for a finish to drive. */
  finishing?: true;
  /** Recorded after the link and before the upload's keys are removed (the finish's commit point). */
  finished?: { digest: Sha256Digest; at: number };
  /** The upload's keys may still be in the bucket after the finish; the alarm removes them. */
  cleanup?: true;
  /**
   * Completion event deliveries still owed (at least once): written in the same record put as
   * `finished`, before any attempt, so a restart between the finish and a delivery loses nothing.
   * The alarm delivers to each target left and drops it on success; `attempts` sets the backoff.
   */
  events?: { pending: EventTarget[]; attempts: number };
}

/** Where a completion event goes: the Queue producer, the webhook, the in-Worker hook (edge/upload-object.ts). */
export type EventTarget = "queue" | "webhook" | "hook";

/** The storage key of the record. */
export const RECORD_KEY = "upload";

/** First retry of background work (finish, cleanup) by the alarm; doubled per failure up to ALARM_MAX_DELAY_MS. */
export const ALARM_RETRY_MS = 5_000;
export const ALARM_MAX_DELAY_MS = 10 * 60_000;

/** When the alarm should next run for `record`: soon while work is pending (finish, cleanup, events), else at expiry. */
export function nextAlarm(record: SessionRecord, now: number): number {
  const pending = record.cleanup === true || (record.finishing === true && !record.finished);
  const work = pending ? now + ALARM_RETRY_MS : record.expiresAt;
  if (!record.events) return work;
  // A fresh completion event goes out at once: the alarm is its only sender, so the request that
  // finished never waits on a webhook. Failed deliveries back off as failed finishes do. Past
  // expiry an owed event holds the record, and the delivery's schedule alone drives the alarm.
  const delivery = now + (record.events.attempts === 0 ? 0 : eventRetryDelay(record.events.attempts));
  return work <= now ? delivery : Math.min(work, delivery);
}

/** Backoff after `attempts` failed deliveries: 5 s, 10 s, 20 s ... up to 10 minutes. */
export function eventRetryDelay(attempts: number): number {
  return Math.min(ALARM_MAX_DELAY_MS, ALARM_RETRY_MS * 2 ** Math.max(0, attempts - 1));
}

/** A SessionStorage in memory, for tests: survives a "crash" when the same instance is reused. */
export function createMemorySessionStorage(): SessionStorage & { readonly alarm: number | null; readonly data: Map<string, unknown> } {
  const data = new Map<string, unknown>();
  let alarm: number | null = null;
  return {
    data,
    get alarm() {
      return alarm;
    },
    async get<T>(key: string) {
      const value = data.get(key);
      return value === undefined ? undefined : (structuredClone(value) as T);
    },
    async put<T>(key: string, value: T) {
      data.set(key, structuredClone(value));
    },
    async deleteAll() {
      data.clear();
    },
    async getAlarm() {
      return alarm;
    },
    async setAlarm(at: number) {
      alarm = at;
    },
    async deleteAlarm() {
      alarm = null;
    },
  };
}
