/** `npm start`'s worker vars (scripts/local-env.ts): the webhook settings reach the local worker. */
import { describe, expect, test } from "vitest";
import { localWorkerVars } from "../../scripts/local-env.ts";

describe("localWorkerVars", () => {
  test("passes WEBHOOK_URL, WEBHOOK_SECRET and BLOB_URL_TTL_SECONDS through; leaves them out when unset", () => {
    const vars = localWorkerVars({ WEBHOOK_URL: "http://127.0.0.1:9000/hook", WEBHOOK_SECRET: "whsec_c2VjcmV0", BLOB_URL_TTL_SECONDS: "600" });
    expect(vars).toMatchObject({ WEBHOOK_URL: "http://127.0.0.1:9000/hook", WEBHOOK_SECRET: "whsec_c2VjcmV0", BLOB_URL_TTL_SECONDS: "600" });
    const none = localWorkerVars({});
    expect(Object.keys(none)).not.toContain("WEBHOOK_URL");
    expect(Object.keys(none)).not.toContain("WEBHOOK_SECRET");
  });
});
