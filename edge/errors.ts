/**
 * The edge's one error type. Handlers throw it; the single `onError` in app.ts turns it into
 * the contract's JSON body `{ code, message, ...details }` with its status and headers, so no
 * route builds an error response by hand and every error answer looks the same.
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { EdgeErrorCode, ErrorBody } from "../shared/protocol.ts";

/** What crosses the Durable Object RPC boundary: Errors lose their fields there, plain data does not. */
export interface ApiErrorData {
  status: ContentfulStatusCode;
  code: EdgeErrorCode;
  message: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An HTTPException that knows its contract error code, extra body fields and headers. */
export class ApiError extends HTTPException {
  override readonly status: ContentfulStatusCode;
  readonly code: EdgeErrorCode;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: EdgeErrorCode,
    message: string,
    extra: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(status, { message, cause: extra.cause });
    this.status = status;
    this.code = code;
    this.details = extra.details ?? {};
    this.headers = extra.headers ?? {};
  }

  /** Plain data, for returning an error from the Durable Object. */
  toData(): ApiErrorData {
    return { status: this.status, code: this.code, message: this.message, details: this.details, headers: this.headers };
  }

  static fromData(data: ApiErrorData): ApiError {
    return new ApiError(data.status, data.code, data.message, {
      ...(data.details ? { details: data.details } : {}),
      ...(data.headers ? { headers: data.headers } : {}),
    });
  }

  /** The response the one onError sends. */
  override getResponse(): Response {
    const body: ErrorBody = { ...this.details, code: this.code, message: this.message };
    const headers = new Headers(this.headers);
    headers.set("content-type", "application/json; charset=utf-8");
    return new Response(JSON.stringify(body), { status: this.status, headers });
  }
}

/** Result of a Durable Object call: errors travel as data so their status and code survive RPC. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ApiErrorData };

/** Unwraps an Outcome on the Worker side, rethrowing its error as an ApiError. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw ApiError.fromData(outcome.error);
}
