/** Runs a bench child script (bench/children/*.ts) with this Node and returns its last JSON line. */
import { spawn } from "node:child_process";
import { join } from "node:path";

export interface ChildRun<T> {
  out: T;
  /** Exit signal (SIGKILL when the child killed itself at its `killAt`). */
  signal: NodeJS.Signals | null;
  code: number | null;
  pid: number;
}

export function runChild<T>(script: string, input: unknown): Promise<ChildRun<T>> {
  const child = spawn(process.execPath, [join(import.meta.dirname, "children", script), JSON.stringify(input)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      const last = stdout.trim().split("\n").at(-1);
      if (!last?.startsWith("{")) return reject(new Error(`${script} gave no result (exit ${code ?? signal}): ${stderr.slice(-2000)}`));
      resolve({ out: JSON.parse(last) as T, signal, code, pid: child.pid ?? 0 });
    });
  });
}
