/** The peer stack: @tus/server + @tus/file-store in a child process on a free port. */
import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

export interface PeerServer {
  endpoint: string;
  pid: number;
  close(): void;
}

export async function startPeerServer(dir: string): Promise<PeerServer> {
  await mkdir(dir, { recursive: true });
  const child = spawn(process.execPath, [join(import.meta.dirname, "../children/tus-server.ts"), dir], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`tus server exited (${code})`)));
    child.stdout.once("data", (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
  });
  return { endpoint: `http://127.0.0.1:${port}/files`, pid: child.pid ?? 0, close: () => void child.kill() };
}
