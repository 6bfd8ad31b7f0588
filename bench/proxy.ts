/**
 * A counting TCP proxy on loopback: counts the bytes clients send towards the server (request
 * lines, headers and bodies), which is how "bytes re-sent after a crash" is measured without a
 * hook in the client or the edge. Headers add well under 1 KiB per request.
 */
import { createConnection, createServer, type Socket } from "node:net";

export interface CountingProxy {
  url: string;
  /** Bytes received from clients since the last reset. */
  readonly upBytes: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<CountingProxy> {
  const { hostname, port } = new URL(target);
  let up = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: hostname, port: Number(port) });
    sockets.add(client).add(upstream);
    client.on("data", (d: Buffer) => (up += d.length));
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return {
    url,
    get upBytes() {
      return up;
    },
    reset: () => void (up = 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
