/**
 * Who may drive an upload: Web Locks across tabs (one lock per fingerprint, so two tabs never
 * send the same file at once), and a slot pool for the uploader's `concurrency`.
 */

export type Release = () => void;

export interface Locks {
  /** The lock if nobody holds it now, else undefined (the caller shows "busy"). */
  tryAcquire(name: string): Promise<Release | undefined>;
  /** Waits until the lock is free (another tab finished or closed). */
  acquire(name: string, signal: AbortSignal): Promise<Release>;
}

interface LockManagerLike {
  request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<void>;
}

/** navigator.locks where it exists (browsers, Node >= 24), else locks within this process. */
export function createLocks(manager: LockManagerLike | undefined = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks): Locks {
  if (!manager) return createLocalLocks();
  const request = (name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }) =>
    new Promise<Release | undefined>((resolve, reject) => {
      manager
        .request(name, options, (lock) => {
          if (!lock) {
            resolve(undefined);
            return Promise.resolve();
          }
          // Held until release() is called: the callback's promise is the lock's lifetime.
          return new Promise<void>((release) => resolve(release));
        })
        .catch(reject);
    });
  return {
    tryAcquire: (name) => request(name, { ifAvailable: true }),
    acquire: async (name, signal) => {
      const release = await request(name, { signal });
      if (!release) throw new Error("lock not granted");
      return release;
    },
  };
}

export function createLocalLocks(): Locks {
  const held = new Set<string>();
  const waiters = new Map<string, Array<() => void>>();
  const grant = (name: string): Release => {
    held.add(name);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held.delete(name);
      waiters.get(name)?.shift()?.();
    };
  };
  return {
    tryAcquire: async (name) => (held.has(name) ? undefined : grant(name)),
    acquire: (name, signal) =>
      new Promise((resolve, reject) => {
        if (!held.has(name)) return resolve(grant(name));
        const wake = () => resolve(grant(name));
        waiters.set(name, [...(waiters.get(name) ?? []), wake]);
        signal.addEventListener("abort", () => {
          waiters.set(
            name,
            (waiters.get(name) ?? []).filter((w) => w !== wake),
          );
          reject(signal.reason);
        });
      }),
  };
}

export interface Slots {
  /** Resolves with a release function once one of `size` slots is free. */
  acquire(signal: AbortSignal): Promise<Release>;
  /** True when a slot is free right now. */
  available(): boolean;
}

export function createSlots(size: number): Slots {
  let free = Math.max(1, size);
  const queue: Array<() => void> = [];
  const release = () => {
    const next = queue.shift();
    if (next) next();
    else free++;
  };
  const once = (): Release => {
    let done = false;
    return () => {
      if (!done) {
        done = true;
        release();
      }
    };
  };
  return {
    available: () => free > 0,
    acquire: (signal) =>
      new Promise((resolve, reject) => {
        if (free > 0) {
          free--;
          return resolve(once());
        }
        const wake = () => resolve(once());
        queue.push(wake);
        signal.addEventListener("abort", () => {
          const i = queue.indexOf(wake);
          if (i >= 0) {
            queue.splice(i, 1);
            reject(signal.reason);
          }
        });
      }),
  };
}
