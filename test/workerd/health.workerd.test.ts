import { SELF } from "cloudflare:test";
import { expect, test } from "vitest";

test("GET /health answers 200 from the worker in workerd", async () => {
  const res = await SELF.fetch("https://edge.test/health");
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ ok: true });
});
