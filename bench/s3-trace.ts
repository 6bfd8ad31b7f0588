/**
 * The request trace behind `BENCH_S3_TRACE=1` (bench/scenarios/upload-s3.ts, off by default): an
 * HTTP proxy in front of RGW and one in front of each tus server, logging every request's start,
 * last body byte and answer. From the log: how many S3 requests of which kind each upload sent,
 * and for each PATCH what ran between its last body byte and its answer (the part of a PATCH the
 * client waits for without sending). The proxies add a hop; the traced rounds are for the
 * breakdown, not for the ratio.
 */
import { type IncomingMessage, request, type ServerResponse, Agent, createServer } from "node:http";

export interface TracedRequest {
  /** Which proxy saw it: "s3" (towards RGW) or "tus" (towards a tus server). */
  via: "s3" | "tus";
  method: string;
  url: string;
  /** S3 operation (or "PATCH"/"POST"/"HEAD" for tus), see `operation`. */
  op: string;
  /** Milliseconds (performance.now()): request head in, last body byte in, answer's head out, answer's end out. */
  start: number;
  bodyEnd: number;
  headers: number;
  end: number;
  status: number;
}

export interface TraceProxy {
  url: string;
  close(): Promise<void>;
}

/** The S3 operation a request stands for, with the edge's record keys named by their role. */
export function operation(method: string, url: string, headers: IncomingMessage["headers"]): string {
  const u = new URL(url, "http://x");
  const q = u.searchParams;
  const key = u.pathname;
  if (q.has("partNumber")) return headers["x-amz-copy-source"] ? "UploadPartCopy" : "UploadPart";
  if (method === "POST" && q.has("uploads")) return "CreateMultipart";
  if (method === "POST" && q.has("uploadId")) return "CompleteMultipart";
  if (method === "GET" && q.has("uploadId")) return "ListParts";
  if (method === "GET" && q.has("uploads")) return "ListMultipartUploads";
  if (method === "DELETE" && q.has("uploadId")) return "AbortMultipart";
  if (method === "POST" && q.has("delete")) return "DeleteObjects";
  if (method === "GET" && (q.has("list-type") || key.split("/").length <= 2)) return "ListObjects";
  if (method === "PUT" && headers["x-amz-copy-source"]) return "CopyObject";
  const role =
    /\/_uploads\/[^/]+\/(info|startedat|hashstates|parts|tail|data)/.exec(key)?.[1] ??
    (/\/blobs\//.test(key) ? "blob" : /\/_layers\//.test(key) ? "link" : "object");
  const verb = { PUT: "Put", GET: "Get", HEAD: "Head", DELETE: "Delete" }[method] ?? method;
  return `${verb} ${role}`;
}

/** A logging HTTP proxy to `target`; every request it forwards is pushed onto `log`. */
export async function startTraceProxy(target: string, via: TracedRequest["via"], log: TracedRequest[]): Promise<TraceProxy> {
  const t = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const entry: TracedRequest = {
      via,
      method: req.method ?? "",
      url: req.url ?? "",
      op: via === "s3" ? operation(req.method ?? "", req.url ?? "", req.headers) : (req.method ?? ""),
      start: performance.now(),
      bodyEnd: 0,
      headers: 0,
      end: 0,
      status: 0,
    };
    log.push(entry);
    const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      entry.headers = performance.now();
      entry.status = answer.statusCode ?? 0;
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      answer.pipe(res);
      answer.on("end", () => (entry.end = performance.now()));
    });
    up.on("error", () => res.destroy());
    req.on("end", () => (entry.bodyEnd = performance.now()));
    req.pipe(up);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}

const ms = (n: number) => n.toFixed(0);

/**
 * One upload's breakdown from the log between `from` and `to`: S3 requests counted by operation,
 * and per PATCH the time from its last body byte to its answer with the S3 requests answered in
 * that window (what the client waited for).
 */
export function summarize(log: TracedRequest[], from: number, to: number): string {
  const window = log.filter((r) => r.start >= from && r.start <= to);
  const s3 = window.filter((r) => r.via === "s3");
  const counts = new Map<string, { n: number; totalMs: number }>();
  for (const r of s3) {
    const c = counts.get(r.op) ?? { n: 0, totalMs: 0 };
    c.n++;
    c.totalMs += r.end - r.start;
    counts.set(r.op, c);
  }
  const lines = [`${s3.length} S3 requests: ${[...counts].map(([op, c]) => `${op} ${c.n} (${ms(c.totalMs / c.n)} ms avg)`).join(", ")}`];
  const patches = window.filter((r) => r.via === "tus" && r.method === "PATCH");
  for (const [i, p] of patches.entries()) {
    const during = s3.filter((r) => r.end > p.bodyEnd && r.start < p.headers);
    const steps = during.map((r) => `${r.op} ${ms(Math.max(r.start, p.bodyEnd) - p.bodyEnd)}+${ms(r.end - Math.max(r.start, p.bodyEnd))}`).join(", ");
    const inBody = s3.filter((r) => r.start >= p.start && r.start < p.bodyEnd).length;
    lines.push(
      `PATCH ${i + 1}: ${ms(p.headers - p.start)} ms (body ${ms(p.bodyEnd - p.start)}, after last byte ${ms(p.headers - p.bodyEnd)}); ${inBody} S3 requests while the body arrived; after: ${steps || "none"}`,
    );
  }
  return lines.join("\n");
}
