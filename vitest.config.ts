import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Three test projects, one `vitest run`:
 * - unit:    plain Node (shared code, client logic, the in-memory storage driver);
 * - workerd: inside real workerd with the R2 and Durable Object bindings of wrangler.jsonc;
 * - browser: Node tests that start the `npm start` stack (vite dev + workerd) and drive real
 *            Chromium through playwright-core.
 */
export default defineConfig({
  test: {
    // The JSON report is what .ci/run counts for its closing `N passed, N failed` line.
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
    projects: [
      {
        test: {
          name: "unit",
          include: ["{shared,client,edge,test/unit,scripts}/**/*.test.ts"],
          exclude: ["**/*.workerd.test.ts", "**/node_modules/**"],
          environment: "node",
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.jsonc" },
            miniflare: {
              bindings: { ALLOW_ANONYMOUS: "true", UPLOAD_SECRET: "test-secret", CORS_ORIGINS: "*" },
            },
          }),
        ],
        test: {
          name: "workerd",
          include: ["**/*.workerd.test.ts"],
          exclude: ["**/node_modules/**"],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/browser/**/*.browser.test.ts"],
          environment: "node",
          globalSetup: ["test/browser/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // One Chromium at a time: CI has two cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
