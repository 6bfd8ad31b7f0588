/** The peer stack: @tus/server + @tus/file-store (or + @tus/s3-store on an S3 server) in a child process on a free port. */
import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

export interface PeerServer {
  endpoint: string;
  pid: number;
  close(): void;
}

/** What the S3 peer needs to reach its store (test/support/s3-server.ts's S3ServerInfo). */
export interface PeerS3 {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

function startPeer(args: string[]): Promise<PeerServer> {
  const child = spawn(process.execPath, [join(import.meta.dirname, "../children/tus-server.ts"), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise<PeerServer>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`tus server exited (${code})`)));
    child.stdout.once("data", (d: Buffer) => {
      const port = (JSON.parse(d.toString()) as { port: number }).port;
      resolve({ endpoint: `http://127.0.0.1:${port}/files`, pid: child.pid ?? 0, close: () => void child.kill() });
    });
  });
}

export async function startPeerServer(dir: string): Promise<PeerServer> {
  await mkdir(dir, { recursive: true });
  return startPeer([dir]);
}

/** @tus/server + @tus/s3-store writing to `s3` (its default 8 MiB parts, as the edge's). */
export function startS3PeerServer(s3: PeerS3): Promise<PeerServer> {
  return startPeer(["--s3", JSON.stringify(s3)]);
}
