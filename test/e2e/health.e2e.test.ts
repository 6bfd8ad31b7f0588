import { expect, inject, test } from "vitest";

test("the npm start stack answers GET /health over real HTTP", async () => {
  const res = await fetch(`${inject("baseUrl")}/health`);
  expect(res.status).toBe(200);
});
