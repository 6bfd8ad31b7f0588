/**
 * The reader worker's side of staging (hashing/reader.ts): every buffer read for the hasher is
 * written into the file's copy (opfs.ts) before the hasher gets it, and the copy is committed
 * each time the bytes cross a multiple of `step`, the hasher's save points: so when the hasher
 * saves a checkpoint at X, the copy already holds X bytes for good. A failure (storage full, OPFS refusing) stops the
 * copy, never the reading: the hash and the upload go on as they would without staging.
 */
import { nameOf, openSink, removeCopy, type StageEvent, type StageRequest, type StageSink } from "./opfs.ts";

export interface Stager {
  /** Writes the file's bytes at `at` into the copy; never throws (a failure stops staging and is reported). */
  write(bytes: Uint8Array, at: number): Promise<void>;
  /** The reading ended at `offset` of a file of `size` bytes: commit, close, say whether the copy is whole. */
  end(offset: number, size: number): Promise<void>;
}

/**
 * Opens the copy for a read starting at `from`. A copy shorter than `from` (an earlier session's
 * copy stopped, or failed its check and was removed, while the hash went on) is first brought up
 * to `from` from the file, so the copy is never behind the hash. Undefined when nothing is copied.
 */
export async function startStaging(request: StageRequest, file: Blob, from: number, report: (event: StageEvent) => void): Promise<Stager | undefined> {
  let sink: StageSink | undefined;
  try {
    sink = await openSink(request.key);
  } catch (error) {
    await stop(request.key, undefined, error, report);
    return undefined;
  }
  if (!sink) {
    report({ kind: "stopped", why: "unavailable" });
    return undefined;
  }
  const open = sink;
  let committed = Math.min(open.size, from);
  let stopped = false;
  const fail = async (error: unknown) => {
    stopped = true;
    await stop(request.key, open, error, report);
  };
  try {
    if (committed < from) await catchUp(file.slice(committed, from), committed, open);
    committed = from;
  } catch (error) {
    await fail(error);
    return undefined;
  }
  return {
    async write(bytes, at) {
      if (stopped) return;
      try {
        await open.write(bytes, at);
        const end = at + bytes.length;
        // Committed whenever the bytes cross one of the hasher's save points (multiples of step),
        // before they are sent: a checkpoint at X then never exists without X bytes of copy.
        if (Math.floor(end / request.step) > Math.floor(committed / request.step)) {
          await open.commit();
          committed = end;
          report({ kind: "written", offset: end });
        }
      } catch (error) {
        await fail(error);
      }
    },
    async end(offset, size) {
      if (stopped) return;
      try {
        await open.commit();
        await open.close();
        stopped = true;
        report(offset === size ? { kind: "whole" } : { kind: "written", offset });
      } catch (error) {
        await fail(error);
      }
    },
  };
}

/** Copies `part` (the file's bytes from `at`) into the copy, without handing anything to the hasher. */
async function catchUp(part: Blob, at: number, sink: StageSink): Promise<void> {
  const reader = part.stream().getReader();
  for (let offset = at; ; ) {
    const { done, value } = await reader.read();
    if (done) break;
    await sink.write(value, offset);
    offset += value.length;
  }
  await sink.commit();
}

/** Stops staging: the copy is closed and removed (a partial copy after "full" would only hold space), and the page told why. */
async function stop(key: string, sink: StageSink | undefined, error: unknown, report: (event: StageEvent) => void): Promise<void> {
  await sink?.close().catch(() => undefined);
  await removeCopy(key);
  report({ kind: "stopped", why: nameOf(error) === "QuotaExceededError" ? "full" : "unavailable" });
}
