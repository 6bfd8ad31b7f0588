/**
 * CORS for the configured origins. Not hono/cors: that middleware answers every OPTIONS as a
 * preflight, which would swallow tus discovery (`OPTIONS /files` without `Origin`). Here only a
 * real preflight (OPTIONS + Origin + Access-Control-Request-Method) is short-circuited; every other
 * answer, errors included, gets Allow-Origin and Expose-Headers after the route ran.
 */
import type { MiddlewareHandler } from "hono";
import { ALLOWED_REQUEST_HEADERS, EXPOSED_HEADERS } from "../../shared/protocol.ts";
import type { EdgeConfig } from "../config.ts";

const ALLOW_METHODS = "GET,HEAD,POST,PATCH,DELETE,OPTIONS";

function allowedOrigin(origins: EdgeConfig["corsOrigins"], origin: string | undefined): string | undefined {
  if (!origin) return undefined;
  if (origins === "*") return "*";
  return origins.includes(origin) ? origin : undefined;
}

/** CORS middleware; `origins` is read per request because the config comes from the env. */
export function corsMiddleware(origins: (c: Parameters<MiddlewareHandler>[0]) => EdgeConfig["corsOrigins"]): MiddlewareHandler {
  return async (c, next) => {
    const origin = c.req.header("origin");
    const list = origins(c);
    const allow = allowedOrigin(list, origin);
    if (c.req.method === "OPTIONS" && origin && c.req.header("access-control-request-method")) {
      const headers = new Headers({ vary: "Origin, Access-Control-Request-Headers" });
      if (allow) {
        headers.set("access-control-allow-origin", allow);
        headers.set("access-control-allow-methods", ALLOW_METHODS);
        headers.set("access-control-allow-headers", ALLOWED_REQUEST_HEADERS.join(","));
        headers.set("access-control-expose-headers", EXPOSED_HEADERS.join(","));
        headers.set("access-control-max-age", "86400");
      }
      return new Response(null, { status: 204, headers });
    }
    await next();
    // Responses from fetch() or a Durable Object have immutable headers: copy before touching.
    const res = new Response(c.res.body, c.res);
    if (list !== "*") res.headers.append("vary", "Origin");
    if (allow) {
      res.headers.set("access-control-allow-origin", allow);
      res.headers.set("access-control-expose-headers", EXPOSED_HEADERS.join(","));
    }
    c.res = undefined;
    c.res = res;
  };
}
