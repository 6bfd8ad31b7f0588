/**
 * The upload writer's body pipeline (./writer.ts, `write`): cuts a request body into full
 * parts and stores each while the next one is received, so the client is not held back while a
 * part travels to the store.
 *
 * Two part-sized buffers (memory stays near two parts, whatever the chunk sizes), taken from the
 * writer's pool (`buffers`) and reused by its next write: allocating 16 MiB afresh per PATCH left
 * workerd's RSS growing with the number of PATCHes (garbage the GC collects late). Bytes are
 * hashed (`consume`) and copied into the current buffer; when it holds exactly one full part:
 *  1. the commit two parts back is awaited (at most one commit behind the uploads); the previous
 *     part's upload may still be running: up to two parts travel at once, one per buffer, and a
 *     buffer is refilled only once its part is stored (at the end of a body, the last two parts
 *     of a PATCH go to the store together, as they would from a client sending them in parallel);
 *  2. the hasher state is saved right there, at the part boundary, before any later byte is
 *     hashed: the state a commit records is the state AT that commit's offset;
 *  3. the part's upload starts, and its commit (`stored(parts, received, state)`) is chained after
 *     the previous part's commit, so commits run strictly in part order; the body goes on into
 *     the other buffer. A commit takes along the parts after its own whose uploads are already
 *     done (one commit to the later offset, with the state saved there, instead of one per part:
 *     at the end of a PATCH both parts usually land together, and each commit is several round
 *     trips to the store); their own commits then find nothing left to do. Once the body has
 *     been read to its end, a part with a later part on its way is not committed on its own at
 *     all: the later part's commit, due as soon as it is stored, takes it along. While the body
 *     still arrives every part is committed when stored, so a PATCH of any size keeps committing
 *     its progress.
 * The next part's upload does not wait for this part's commit (its small writes to the store and
 * the record): the store is kept busy with part bytes instead of idling once per part (bench
 * item 3). A part uploaded whose predecessor then fails to commit is never committed; a later
 * writer uploads that part number again, which replaces it. A part is buffered whole rather than
 * streamed to the store as its bytes arrive: workerd keeps memory per streamed part, so memory
 * would grow with the upload (docs/bench.md, item 7).
 * Only exactly full parts are sent; the bytes after the last one (`pending`) are the caller's to
 * commit as the tail. A failed stage is remembered (`failed`), surfaces at the next boundary, the
 * next chunk, or `drain`, and stops the pipeline: nothing is committed after a gap, and the bytes
 * after a failed part must not be committed (the caller closes the writer instead).
 * `drain` / `settle` wait for every upload and commit in flight (throwing the first failure, or
 * not); the caller always settles before it returns, so nothing is still being stored after
 * `write` ends.
 */
import type { UploadedPart } from "../storage/driver.ts";

export interface PartPipelineOptions {
  partSize: number;
  /** Bytes from the start of the first buffer to the end of the upload (sizes the buffers). */
  capacity: number;
  /** Bytes already received before this body (the committed tail): the start of the first part. */
  tail: Uint8Array;
  /** The part number of the first part sent. */
  firstPartNumber: number;
  /**
   * Buffers to reuse (taken out while this pipeline runs, put back by `release`); new ones are
   * allocated when it has none big enough.
   */
  buffers?: Uint8Array[];
  /** Stores a full part; absent while the whole upload fits one part (nothing is sent then). */
  uploadPart?: (partNumber: number, bytes: Uint8Array) => Promise<UploadedPart>;
  /** Sees every byte in order before it is buffered (hasher, body checksum). */
  consume: (bytes: Uint8Array) => void | Promise<void>;
  /** The hasher state now, at a part boundary (undefined: none to save). */
  saveState: () => Uint8Array | undefined;
  /**
   * Commits stored parts, in part order, consecutive from the last committed one: `received` body
   * bytes end the last of them, `state` is the hasher state there.
   */
  stored: (parts: UploadedPart[], received: number, state: Uint8Array | undefined) => Promise<void>;
}

export class PartPipeline {
  /** Body bytes absorbed so far. */
  received = 0;
  private buffer: Uint8Array | undefined;
  private spare: Uint8Array | undefined;
  private fill: number;
  private sent = 0;
  /**
   * The uploads that still read `buffer` and `spare` (the part sent last reads `spare`): a buffer
   * is filled again only once its upload is done. The newest commit and the one before it. None
   * of these ever rejects (a failure lands in `failure`).
   */
  private bufferBusy: Promise<void> | undefined;
  private spareBusy: Promise<void> | undefined;
  private committing: Promise<void> | undefined;
  private committingBefore: Promise<void> | undefined;
  /** Set once the body has been read to its end (`drain`): the last part of this write is sent. */
  private ending = false;
  /** Parts sent and not committed yet, in part order; `part` is set once the upload is done. */
  private readonly uncommitted: { received: number; state: Uint8Array | undefined; part?: UploadedPart }[] = [];
  private failure: { error: unknown } | undefined;

  /** Every buffer this pipeline took, to give back to the pool. */
  private readonly taken: Uint8Array[] = [];

  constructor(private readonly opts: PartPipelineOptions) {
    this.buffer = this.take(opts.uploadPart ? Math.min(opts.partSize, opts.capacity) : opts.capacity);
    this.buffer.set(opts.tail);
    this.fill = opts.tail.length;
  }

  /**
   * Gives the buffers back to the pool. Only once nothing reads them any more: after `settle`,
   * and after the caller has committed `pending` (a view into one of them).
   */
  release(): void {
    this.opts.buffers?.push(...this.taken.splice(0));
    this.buffer = undefined;
    this.spare = undefined;
  }

  /** True once a part's upload or its `stored` callback failed. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The error of the failed stage, if any. */
  get error(): unknown {
    return this.failure?.error;
  }

  /** Bytes received after the last part sent: the tail to commit. */
  get pending(): Uint8Array {
    return this.buffer ? this.buffer.subarray(0, this.fill) : new Uint8Array(0);
  }

  /** True when a full part sits in the buffer unsent (its send was cut short): not a tail. */
  get holdsFullPart(): boolean {
    return this.opts.uploadPart !== undefined && this.fill === this.opts.partSize;
  }

  async absorb(chunk: Uint8Array): Promise<void> {
    if (this.failure) await this.drain(); // throws: stop reading as soon as a part failed
    while (chunk.length > 0) {
      this.buffer ??= this.nextBuffer();
      if (this.bufferBusy) {
        // The part this buffer held is still being sent: wait for it before overwriting it.
        await this.bufferBusy;
        this.bufferBusy = undefined;
        if (this.failure) await this.drain();
      }
      const piece = chunk.subarray(0, this.buffer.length - this.fill);
      // Cannot happen: the buffers hold the rest of the upload and the caller caps the body.
      if (piece.length === 0) throw new Error("upload buffer overflow");
      await this.opts.consume(piece);
      this.buffer.set(piece, this.fill);
      this.fill += piece.length;
      this.received += piece.length;
      chunk = chunk.subarray(piece.length);
      if (this.fill === this.opts.partSize && this.opts.uploadPart) await this.send(this.opts.uploadPart);
    }
  }

  /** Waits for the part in flight and its commit; throws if any stage failed. */
  async drain(): Promise<void> {
    this.ending = true;
    await this.settle();
    if (this.failure) throw this.failure.error;
  }

  /** Waits for the part in flight and every commit, whatever their outcome. */
  async settle(): Promise<void> {
    await this.bufferBusy;
    await this.spareBusy;
    await this.committing;
    this.bufferBusy = this.spareBusy = this.committing = this.committingBefore = undefined;
  }

  private async send(uploadPart: NonNullable<PartPipelineOptions["uploadPart"]>): Promise<void> {
    // The previous part may still be uploading: this one starts at once (two parts in flight,
    // one per buffer); only refilling its buffer waits (absorb).
    await this.committingBefore; // the commit two parts back is done: commits never pile up
    if (this.failure) throw this.failure.error;
    const bytes = this.buffer as Uint8Array;
    const partNumber = this.opts.firstPartNumber + this.sent++;
    const received = this.received;
    const state = this.opts.saveState(); // at the boundary, before any later byte is hashed
    const previous = this.committing;
    const entry: (typeof this.uncommitted)[number] = { received, state };
    this.uncommitted.push(entry);
    const upload = (async () => (entry.part = await uploadPart(partNumber, bytes)))();
    const fail = (error: unknown) => void (this.failure ??= { error });
    const uploaded = upload.then(() => undefined, fail);
    this.committingBefore = previous;
    this.committing = (async () => {
      await upload;
      await previous;
      if (this.failure) return; // an earlier part failed: nothing is committed after a gap
      if (!this.uncommitted.includes(entry)) return; // an earlier commit took this part along
      // The body is read and a later part is on its way: that part's commit, due as soon as it
      // is stored, takes this one along (one commit at the end of a PATCH, not one per part).
      if (this.ending && this.uncommitted.at(-1) !== entry) return;
      // This part and the stored ones right after it: uploads done, none missing in between.
      let n = this.uncommitted.indexOf(entry) + 1;
      while (this.uncommitted[n]?.part) n++;
      const batch = this.uncommitted.slice(0, n);
      const last = batch[n - 1] as typeof entry;
      await this.opts.stored(
        batch.map((e) => e.part as UploadedPart),
        last.received,
        last.state,
      );
      this.uncommitted.splice(0, n);
    })().catch(fail);
    this.buffer = this.spare; // allocated on first use: a body of one part needs one buffer
    this.bufferBusy = this.spareBusy;
    this.spare = bytes;
    this.spareBusy = uploaded;
    this.fill = 0;
  }

  /** The second buffer, big enough for the rest of the upload after the parts sent. */
  private nextBuffer(): Uint8Array {
    return this.take(Math.max(0, Math.min(this.opts.partSize, this.opts.capacity - this.sent * this.opts.partSize)));
  }

  /** A zeroed-or-reused view of `size` bytes: from the pool when one is big enough. */
  private take(size: number): Uint8Array {
    const pool = this.opts.buffers;
    const at = pool ? pool.findIndex((b) => b.length >= size) : -1;
    const whole = at >= 0 && pool ? (pool.splice(at, 1)[0] as Uint8Array) : new Uint8Array(size);
    this.taken.push(whole);
    return whole.subarray(0, size);
  }
}
