/** Helpers for the browser tests that drive the client library through test/pages/client-harness. */
import type { Page } from "playwright-core";
import type { UploadSnapshot } from "../../client/index.ts";
import type { Harness } from "../pages/client-harness.ts";

export type H = { harness: Harness };

/** Polls the harness until upload `key` satisfies `done`; a failed upload throws with its error. */
export async function untilUpload(page: Page, key: string, done: (u: UploadSnapshot) => boolean): Promise<UploadSnapshot> {
  for (;;) {
    const u = await page.evaluate((k) => (globalThis as unknown as H).harness.get(k), key);
    if (!u) throw new Error(`no upload ${key}`);
    if (u.state.kind === "failed") throw new Error(`upload failed: ${JSON.stringify(u.state.error)}`);
    if (done(u)) return u;
    await new Promise((r) => setTimeout(r, 25));
  }
}
