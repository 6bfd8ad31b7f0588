/**
 * Measuring processes from outside, through /proc (Linux): CPU time (utime + stime) and resident
 * memory of the workerd process that runs the edge. Nothing in edge/ has to change for this.
 */
import { readdirSync, readFileSync } from "node:fs";

/** Linux reports utime/stime in clock ticks; 100 per second on every mainstream kernel config. */
const CLK_TCK = 100;

interface Stat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime in seconds. */
  cpu: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may contain spaces and parentheses: split after the last ')'.
    const close = raw.lastIndexOf(")");
    const comm = raw.slice(raw.indexOf("(") + 1, close);
    const f = raw.slice(close + 2).split(" ");
    // f[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15.
    return { pid, comm, ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone (workerd restarted mid-measurement? run again)`);
  return s.cpu;
}

/** Resident set size in bytes (VmRSS), or 0 when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** All descendants of `root` whose command name is `comm` (e.g. "workerd"). */
export function descendantsNamed(root: number, comm: string): number[] {
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readStat(Number(d)))
    .filter((s): s is Stat => s !== undefined);
  const children = new Map<number, Stat[]>();
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      if (c.comm === comm) out.push(c.pid);
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

/** The one workerd started since `before` was taken (a list of workerd pids under this process). */
export function newWorkerd(before: number[]): number {
  const found = descendantsNamed(process.pid, "workerd").filter((p) => !before.includes(p));
  if (found.length !== 1) throw new Error(`expected one new workerd process, found ${found.length}`);
  return found[0] as number;
}

/**
 * Samples a process while `work` runs: CPU seconds used during it and the peak RSS (sampled
 * every 50 ms; a spike shorter than that can be missed, which is fine for "does it grow").
 */
export async function watch<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpu: number; peakRss: number; seconds: number }> {
  let peakRss = rssBytes(pid);
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, rssBytes(pid));
  }, 50);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  try {
    const result = await work();
    const seconds = (performance.now() - t0) / 1000;
    peakRss = Math.max(peakRss, rssBytes(pid));
    return { result, cpu: cpuSeconds(pid) - cpu0, peakRss, seconds };
  } finally {
    clearInterval(timer);
  }
}
