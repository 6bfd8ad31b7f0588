/**
 * Chaos suite, level 2 (issue 14): the upload session (edge/upload/session.ts, the Durable
 * Object's logic without the runtime) over a fault-injecting store, crashed between any two steps
 * and at any storage operation, with its alarm fired at random points, driven by a tus-like client
 * that retries. A crash abandons the session (its storage wrapper and its durable storage stop
 * answering it, as a killed process) and a new session is built on the same bucket and the same
 * SessionStorage, as a restarted Durable Object is.
 *
 * The client: POST (sometimes with the first bytes), then HEAD for the offset and PATCH chunks
 * from it; 5xx and 409 are retried (a POST that fails is retried as a new upload, as tus clients
 * do; the old one is left to expire), a body the client breaks off is answered by nobody. Checked
 * at every answer and after every step:
 * - never `offset === length` without `digest`, and a `digest` only when the blob is linked and
 *   holds exactly the upload's bytes at that moment;
 * - never 404/410 for an upload that exists, never another 4xx than 409 (store faults are 5xx);
 * - the offset a client is told never goes back;
 * - nothing unverified is ever at a blob path;
 * - every upload converges to done with exactly its bytes (or cancelled); afterwards, and for
 *   abandoned uploads after expiry and the alarm or the purge, no key is left under any upload,
 *   no session record is left for a removed upload, and no multipart upload the code knew is open.
 */
import fc from "fast-check";
import { afterAll, beforeAll, vi } from "vitest";
import type { Sha256Digest } from "../../shared/digest.ts";
import { ApiError } from "../../edge/http/errors.ts";
import { isLinked } from "../../edge/registry/blobs.ts";
import { SimulatedCrash, mulberry32, type FaultyDriver } from "../../edge/storage/faulty.ts";
import type { SessionConfig } from "../../edge/upload/context.ts";
import { ALARM_RETRY_MS, createMemorySessionStorage, type SessionStorage } from "../../edge/upload/record.ts";
import { UploadSession, type UploadStatus, type WriteRequest } from "../../edge/upload/session.ts";
import { seededBytes } from "../support/seeded.ts";
import { ChaosFigures, chaosTest, noteDelivered, startProcess, startSchedule, tickSleep } from "../support/chaos.ts";
import { type BaseSchedule, type BaseUploadSpec, baseUploadArbs, maybeStep, PART_EDGE_SIZES, uploadSizeArb, scheduleArb } from "../support/chaos.ts";
import { digestOf, finishedProblems, hexBytes, leftoverProblems, MiB, nextChunkSize, PART, sha256Hex, uploadIdOf } from "../support/chaos.ts";

const TRACE = process.env.CHAOS_TRACE === "1";
const figures = new ChaosFigures();
const NAMESPACE = "chaos/session";
const MAX_STEPS = 300;
const TTL_SECONDS = 24 * 3600;
const config: SessionConfig = {
  partSize: PART,
  maxPatchSize: 64 * MiB,
  uploadTtlSeconds: TTL_SECONDS,
  bodyIdleTimeoutMs: 60_000,
};

interface UploadSpec extends BaseUploadSpec {
  /** Send the first chunk with the POST (tus creation-with-upload). */
  withCreation: boolean;
  cancelAt: number | null;
  /** The client walks away after this many steps and never comes back: the upload must expire and be purged. */
  abandonAt: number | null;
  cutChance: number;
  checksums: boolean;
}

interface Schedule extends BaseSchedule {
  /** Chance that a session's storage dies at a random operation. */
  crashChance: number;
  /** Chance of a restart between two steps. */
  restartChance: number;
  /** Chance of firing the alarm before a step (and, half of those times, during it). */
  alarmChance: number;
  uploads: UploadSpec[];
}

const uploadArb: fc.Arbitrary<UploadSpec> = fc.record({
  ...baseUploadArbs(uploadSizeArb(PART_EDGE_SIZES, 20 * MiB)),
  withCreation: fc.boolean(),
  cancelAt: maybeStep(12, 4),
  abandonAt: maybeStep(12, 6),
  cutChance: fc.constantFrom(0, 0.2),
  checksums: fc.boolean(),
});

const schedules = scheduleArb<Schedule>(
  {
    crashChance: fc.constantFrom(0, 0.1, 0.3),
    restartChance: fc.constantFrom(0, 0.1, 0.3),
    alarmChance: fc.constantFrom(0, 0.2, 0.5),
  },
  uploadArb,
);

/** A durable storage that stops answering once its process died (a killed object writes nothing more). */
function crashable(storage: SessionStorage, proc: () => FaultyDriver): SessionStorage {
  const alive = () => {
    if (proc().crashed) throw new SimulatedCrash(proc().stats.operations);
  };
  return {
    async get<T>(key: string) {
      alive();
      return storage.get<T>(key);
    },
    async put<T>(key: string, value: T) {
      alive();
      return storage.put<T>(key, value);
    },
    deleteAll: async () => (alive(), storage.deleteAll()),
    getAlarm: async () => (alive(), storage.getAlarm()),
    setAlarm: async (at) => (alive(), storage.setAlarm(at)),
    deleteAlarm: async () => (alive(), storage.deleteAlarm()),
  };
}

/** A request body of `bytes` in 1 MiB pieces; when `cutAt` is given it errors after that many bytes (a dropped connection). */
function bodyOf(bytes: Uint8Array, cutAt: number | undefined): ReadableStream<Uint8Array> {
  let at = 0;
  const end = cutAt ?? bytes.length;
  // A plain stream, read as it comes (a byte stream's BYOB reads with `min` stall in Node when
  // the body is shorter than `min`).
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= end) {
        if (cutAt !== undefined) controller.error(new Error("connection dropped"));
        else controller.close();
        return;
      }
      const piece = bytes.slice(at, Math.min(end, at + MiB));
      at += piece.length;
      controller.enqueue(piece);
    },
  });
}

/** The answer of one request as the client sees it: a status, an HTTP error, or nothing (crash, dropped body). */
type Answer = { ok: UploadStatus } | { error: ApiError } | { none: true };

async function runSchedule(s: Schedule): Promise<string[]> {
  const run = startSchedule(figures, s);
  const { store, rates, delivered, checkBlobs, violations } = run;
  let clock = Date.now();

  /** One upload attempt: an id, its durable storage, and the session currently serving it. */
  class Attempt {
    readonly storage = createMemorySessionStorage();
    proc!: FaultyDriver;
    session!: UploadSession;
    constructor(
      readonly id: string,
      readonly random: () => number,
    ) {
      this.restart(true);
    }

    /** A new process: fresh fault wrapper (maybe with a crash point), a new session on the same stores. */
    restart(first = false, faults = true): void {
      if (!first) {
        figures.endProcess(this.proc);
        this.proc.crash(); // whatever it still runs stops at its next storage call
      }
      const proc = faults ? startProcess(store, this.random, rates, { chance: s.crashChance, within: 80 }) : startProcess(store, this.random, {});
      this.proc = proc;
      this.session = new UploadSession({
        driver: noteDelivered(proc, delivered),
        storage: crashable(this.storage, () => proc),
        config,
        now: () => clock,
        writer: { retryDelayMs: 1, sleep: tickSleep },
      });
    }

    /** Runs a request; a crash during it means no answer reaches the client, and the object restarts. */
    async ask(call: (session: UploadSession) => Promise<UploadStatus | void>): Promise<Answer> {
      const proc = this.proc;
      try {
        const status = await call(this.session);
        if (proc.crashed) return this.crashed(proc);
        return { ok: status ?? { offset: -1, length: -1, expiresAt: 0 } };
      } catch (err) {
        if (proc.crashed) return this.crashed(proc);
        if (err instanceof ApiError) return { error: err };
        throw err; // the session must map every error (edge/errors.ts)
      }
    }

    /** The object died under this request: restart it (once, though two requests saw it). */
    private crashed(proc: FaultyDriver): Answer {
      if (this.proc === proc) this.restart();
      return { none: true };
    }

    /** Ends the last process's accounting. */
    close(): void {
      figures.endProcess(this.proc);
    }
  }

  const abandoned: Attempt[] = [];
  const finished: { attempt: Attempt; data: Uint8Array; index: number }[] = [];
  const cancelled: { attempt: Attempt; index: number }[] = [];

  const runUpload = async (u: UploadSpec, index: number): Promise<void> => {
    figures.uploads++;
    const data = seededBytes(u.size, u.dataSeed);
    const digest: Sha256Digest = digestOf(data);
    const say = (what: string) => violations.push(`upload ${index} (${u.size} bytes, digest ${u.digestAt}): ${what}`);
    const trace = (what: string) => {
      if (TRACE) console.log(`[upload ${index}] step ${steps}: ${what}`);
    };
    const rnd = mulberry32(s.seed + 7919 * (index + 1));
    let attempts = 0;
    let attempt: Attempt | undefined;
    let told = 0; // the highest offset this attempt has been told
    let steps = 0;
    let chunk = 0;
    let declared = u.digestAt === "create";

    /** Checks one answer; returns the status when there is one. */
    const judge = async (what: string, answer: Answer, cut: boolean): Promise<UploadStatus | undefined> => {
      if ("none" in answer) {
        trace(`${what}: no answer (crash)`);
        return undefined;
      }
      if ("error" in answer) {
        const { status, code } = answer.error;
        const cause = answer.error.cause;
        trace(`${what}: ${status} ${code} ${answer.error.message}${cause instanceof Error ? ` <- ${cause.name}: ${cause.message}` : ""}`);
        if (cut) return undefined; // nobody hears the answer to a body the client broke off
        if (status === 404 || status === 410) say(`${what}: ${status} ${code} for an upload that exists`);
        else if (status >= 400 && status < 500 && status !== 409) say(`${what}: ${status} ${code}: ${answer.error.message}`);
        else if (status === 500) figures.unexpectedError(answer.error.cause ?? answer.error, s);
        return undefined;
      }
      const st = answer.ok;
      trace(`${what}: offset ${st.offset}/${st.length}${st.digest ? ` digest ${st.digest.slice(7, 19)}` : ""}`);
      if (cut) return undefined;
      if (st.offset === st.length && st.digest === undefined) say(`${what}: offset = length (${st.length}) without a digest`);
      if (st.digest !== undefined) {
        if (st.digest !== digest) say(`${what}: digest ${st.digest}, expected ${digest}`);
        else if (!(await isLinked(store, NAMESPACE, digest))) say(`${what}: reported done before the blob is linked`);
      }
      if (st.offset < told) say(`${what}: offset went back from ${told} to ${st.offset}`);
      told = Math.max(told, st.offset);
      return st;
    };

    const newAttempt = () => {
      if (attempt) abandoned.push(attempt);
      attempt = new Attempt(uploadIdOf(index * 1000 + attempts++), rnd);
      told = 0;
    };

    let outcome: "finished" | "cancelled" | "abandoned" | undefined;
    let created = false;
    newAttempt();
    while (outcome === undefined) {
      const a = attempt as Attempt;
      if (++steps > MAX_STEPS) {
        figures.lost++;
        say(`did not converge in ${MAX_STEPS} steps (told ${told})`);
        abandoned.push(a);
        break;
      }
      if (u.abandonAt !== null && steps > u.abandonAt) {
        outcome = "abandoned";
        abandoned.push(a);
        break;
      }
      clock += 1000;
      if (created && rnd() < s.restartChance) {
        trace("restart");
        a.restart();
      }
      let alarmDuring = false;
      if (created && rnd() < s.alarmChance) {
        alarmDuring = rnd() < 0.5;
        if (!alarmDuring) {
          trace("alarm");
          await a.ask((session) => session.alarm());
        }
      }
      const during = alarmDuring ? a.ask((session) => session.alarm()) : Promise.resolve();

      if (!created) {
        const first = u.withCreation ? data.subarray(0, Math.min(u.size, Math.max(u.chunks[0] ?? 1, Math.ceil(u.size / 20)))) : undefined;
        const answer = await a.ask((session) =>
          session.create({
            id: a.id,
            namespace: NAMESPACE,
            length: u.size,
            metadata: "",
            ...(u.digestAt === "create" ? { declaredDigest: digest } : {}),
            ...(first ? { write: { offset: 0, contentLength: first.length, body: bodyOf(first, undefined) } } : {}),
          }),
        );
        const st = await judge("POST", answer, false);
        if (st) {
          created = true;
          if (st.digest) outcome = "finished";
        } else {
          newAttempt(); // a tus client creates a new upload; the old one expires
        }
      } else if (u.cancelAt !== null && steps > u.cancelAt) {
        const answer = await a.ask((session) => session.terminate(NAMESPACE));
        if ("ok" in answer) outcome = "cancelled";
        else if ("error" in answer && answer.error.status === 404)
          outcome = "cancelled"; // an earlier DELETE whose answer was lost
        else await judge("DELETE", answer, false);
      } else {
        const head = await judge("HEAD", await a.ask((session) => session.head(NAMESPACE)), false);
        if (head?.digest) outcome = "finished";
        else if (head) {
          const want = nextChunkSize(u, chunk++);
          const bytes = data.subarray(head.offset, Math.min(u.size, head.offset + want));
          const last = head.offset + bytes.length === u.size;
          const cutAt = rnd() < u.cutChance && bytes.length > 0 ? Math.floor(rnd() * bytes.length) : undefined;
          const reprDigest = !declared && ((u.digestAt === "mid" && head.offset >= u.midAt * u.size) || (u.digestAt === "finish" && last)) ? digest : undefined;
          const req: WriteRequest = {
            offset: head.offset,
            contentLength: bytes.length,
            body: bodyOf(bytes, cutAt),
            ...(u.checksums ? { checksum: { algorithm: "sha256" as const, expected: hexBytes(sha256Hex(bytes)) } } : {}),
            ...(reprDigest ? { reprDigest } : {}),
          };
          trace(`PATCH ${bytes.length} at ${head.offset}${cutAt === undefined ? "" : ` cut after ${cutAt}`}${reprDigest ? " with Repr-Digest" : ""}`);
          const st = await judge("PATCH", await a.ask((session) => session.patch(NAMESPACE, req)), cutAt !== undefined);
          if (st && reprDigest) declared = true;
          if (st?.digest) outcome = "finished";
        }
      }
      await during;
      await checkBlobs();
    }

    const a = attempt as Attempt;
    if (outcome === "finished") {
      figures.finished++;
      finished.push({ attempt: a, data, index });
    } else if (outcome === "cancelled") {
      figures.cancelled++;
      cancelled.push({ attempt: a, index });
    }
    trace(`outcome ${outcome ?? "none"}`);
  };

  await Promise.all(s.uploads.map((u, i) => runUpload(u, i)));

  // Background work converges: the alarm finishes cleanups (store healthy now, as it will be
  // eventually); then past expiry the alarm or the purge removes every abandoned upload.
  const drive = async (a: Attempt, what: () => Promise<unknown>) => {
    for (let i = 0; i < 3; i++) {
      a.restart(false, false);
      clock += ALARM_RETRY_MS;
      try {
        await what();
      } catch (err) {
        figures.unexpectedError(err, s);
      }
    }
  };
  for (const { attempt } of finished) await drive(attempt, () => attempt.session.alarm());
  for (const { attempt, index } of finished) {
    const data = finished.find((f) => f.attempt === attempt)?.data as Uint8Array;
    for (const p of await finishedProblems(store, NAMESPACE, attempt.id, data)) violations.push(`upload ${index}: after finish and alarms: ${p}`);
  }
  for (const { attempt, index } of cancelled) {
    for (const p of await leftoverProblems(store, NAMESPACE, attempt.id)) violations.push(`upload ${index}: after DELETE: ${p}`);
    if (attempt.storage.data.size > 0) violations.push(`upload ${index}: after DELETE the session still holds a record`);
  }
  clock += (TTL_SECONDS + 3600) * 1000;
  for (const attempt of abandoned) {
    await drive(attempt, async () => {
      await attempt.session.alarm();
      await attempt.session.purge(clock, { namespace: NAMESPACE, id: attempt.id });
    });
    for (const p of await leftoverProblems(store, NAMESPACE, attempt.id))
      violations.push(`abandoned upload ${attempt.id.slice(0, 8)}: after expiry and purge: ${p}`);
    if (attempt.storage.data.size > 0) violations.push(`abandoned upload ${attempt.id.slice(0, 8)}: after expiry and purge the session still holds a record`);
  }
  for (const a of [...finished.map((f) => f.attempt), ...cancelled.map((c) => c.attempt), ...abandoned]) a.close();
  return run.end();
}

chaosTest({ subject: "upload session", level: 2, report: "session", defaultRuns: 20, figures, schedules, run: runSchedule });

// The session logs every background failure (console.error); under chaos that is thousands of
// expected lines. The figures and violations below say what matters.
beforeAll(() => {
  if (!TRACE) vi.spyOn(console, "error").mockImplementation(() => undefined);
});

afterAll(() => {
  vi.restoreAllMocks();
});
