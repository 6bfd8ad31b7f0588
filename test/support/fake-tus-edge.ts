/**
 * A tiny tus 1.0 server on node:http standing in for the edge, for client tests that need it to
 * fail on cue (503 + Retry-After, a dropped connection) without starting workerd. It keeps bytes
 * in memory, finishes like the edge (Content-Location and Repr-Digest on the last PATCH) and logs
 * every request with the status it got.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { formatReprDigest, type Sha256Digest } from "../../shared/digest.ts";

export interface FakeAnswer {
  status: number;
  headers?: Record<string, string>;
  /** The edge's JSON error code (body `{code, message}`). */
  code?: string;
}

export interface FakeRequest {
  method: string;
  /** Upload-Offset of a PATCH (or the upload's offset for HEAD); undefined otherwise. */
  offset: number | undefined;
  /** How many requests with this method and offset came before (0 = the first). */
  seen: number;
}

export interface FakeEdge {
  /** The tus endpoint, e.g. http://127.0.0.1:1234/files. */
  endpoint: string;
  /** "METHOD status" per request, in order. */
  log: string[];
  close(): Promise<void>;
}

/** `fault` answers a request instead of the server when it returns an answer. */
export async function startFakeEdge(
  fault: (req: FakeRequest) => FakeAnswer | undefined = () => undefined,
  options: { partSize?: number } = {},
): Promise<FakeEdge> {
  const partSize = options.partSize ?? 1024;
  const uploads = new Map<string, { length: number; chunks: Buffer[]; offset: number }>();
  const seen = new Map<string, number>();
  const log: string[] = [];
  let next = 0;
  const server: Server = createServer(async (req, res) => {
    // Read every body first: an answer sent before the body is read breaks the connection's next request.
    const body = await readAll(req);
    const method = req.method ?? "";
    const id = /^\/files\/([^/]+)$/.exec(req.url ?? "")?.[1];
    const upload = id ? uploads.get(id) : undefined;
    const offset = method === "PATCH" ? Number(req.headers["upload-offset"]) : method === "HEAD" ? upload?.offset : undefined;
    const seenKey = `${method} ${offset}`;
    const count = seen.get(seenKey) ?? 0;
    seen.set(seenKey, count + 1);
    const send = (status: number, headers: Record<string, string> = {}, text = "") => {
      log.push(`${method} ${status}`);
      res.writeHead(status, { "Tus-Resumable": "1.0.0", "Cache-Control": "no-store", ...headers });
      res.end(text);
    };
    const injected = fault({ method, offset, seen: count });
    if (injected) {
      const text = injected.code ? JSON.stringify({ code: injected.code, message: `injected ${injected.status}` }) : "";
      return send(injected.status, { ...(text ? { "Content-Type": "application/json" } : {}), ...injected.headers }, text);
    }
    if (method === "OPTIONS") {
      return send(204, {
        "Tus-Version": "1.0.0",
        "Tus-Extension": "creation",
        "Upload-Part-Size": String(partSize),
        "Upload-Max-Chunk-Size": String(partSize * 4),
      });
    }
    if (method === "POST" && req.url === "/files") {
      const newId = String(++next);
      uploads.set(newId, { length: Number(req.headers["upload-length"]), chunks: [], offset: 0 });
      return send(201, { Location: `/files/${newId}`, "Upload-Offset": "0" });
    }
    if (!upload) return send(404);
    if (method === "HEAD") return send(200, { "Upload-Offset": String(upload.offset), "Upload-Length": String(upload.length) });
    if (method === "PATCH") {
      if (offset !== upload.offset) return send(409, { "Upload-Offset": String(upload.offset) });
      upload.chunks.push(body);
      upload.offset += body.length;
      const headers: Record<string, string> = { "Upload-Offset": String(upload.offset) };
      if (upload.offset === upload.length) {
        const digest = `sha256:${createHash("sha256").update(Buffer.concat(upload.chunks)).digest("hex")}` as Sha256Digest;
        headers["Content-Location"] = `/blobs/${digest}`;
        headers["Repr-Digest"] = formatReprDigest(digest);
      }
      return send(204, headers);
    }
    return send(405);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/files`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
