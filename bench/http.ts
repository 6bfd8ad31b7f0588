/** Small HTTP helpers over node:http that stream request bodies from files. */
import { createReadStream } from "node:fs";
import { request } from "node:http";

export interface Sent {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** performance.now() when the last body byte was handed to the socket, and when the response began. */
  lastByteAt: number;
  responseAt: number;
}

export function send(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  body?: { path: string; start: number; end: number },
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    let lastByteAt = 0;
    // A fresh connection per request: reusing a keep-alive socket the server has just closed
    // fails with "socket hang up" (seen after a 1 GiB PUT), and a connection costs nothing here.
    const req = request(url, { method, headers, agent: false }, (res) => {
      const responseAt = performance.now();
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, lastByteAt: lastByteAt || responseAt, responseAt }));
    });
    req.on("error", reject);
    req.on("finish", () => (lastByteAt = performance.now()));
    if (body && body.end > body.start) createReadStream(body.path, { start: body.start, end: body.end - 1, highWaterMark: 1024 * 1024 }).pipe(req);
    else req.end();
  });
}

/** PUT of bytes [start, end) of a file, with its Content-Length (the baseline routes' calls). */
export function putRange(url: string, path: string, start: number, end: number): Promise<Sent> {
  return send(url, "PUT", { "content-length": end - start }, { path, start, end });
}
