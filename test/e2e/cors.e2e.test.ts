/**
 * Through the `npm start` stack (vite dev in front of workerd): tus discovery and CORS preflights
 * must reach the worker. Vite's own CORS middleware answers any OPTIONS with an Origin unless it is
 * switched off (vite.config.ts), which would hide the tus headers from pages on other origins.
 */
import { expect, inject, test } from "vitest";

const baseUrl = inject("baseUrl");

test("OPTIONS /files from another origin gets the worker's tus discovery headers and CORS exposure", async () => {
  const res = await fetch(`${baseUrl}/files`, { method: "OPTIONS", headers: { Origin: "http://page.example" } });
  expect(res.status).toBe(204);
  expect(res.headers.get("tus-version")).toBe("1.0.0");
  expect(res.headers.get("upload-part-size")).toMatch(/^\d+$/);
  expect(res.headers.get("access-control-allow-origin")).toBe("*");
  expect(res.headers.get("access-control-expose-headers")).toContain("Upload-Offset");
});

test("a CORS preflight for PATCH is answered by the worker with the tus request headers allowed", async () => {
  const res = await fetch(`${baseUrl}/files/abc`, {
    method: "OPTIONS",
    headers: { Origin: "http://page.example", "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "tus-resumable,upload-offset" },
  });
  expect(res.status).toBe(204);
  expect(res.headers.get("access-control-allow-methods")).toContain("PATCH");
  expect(res.headers.get("access-control-allow-headers")).toContain("Upload-Offset");
});
