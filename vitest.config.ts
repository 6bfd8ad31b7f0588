import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Three test projects, one `vitest run`:
 * - unit:    plain Node (shared code, client logic, the in-memory storage driver);
 * - workerd: inside real workerd with the R2 and Durable Object bindings of wrangler.jsonc;
 * - e2e:     Node tests (tus-js-client, the CLI) against the `npm start` stack (vite dev + workerd)
 *            over real loopback HTTP;
 * - browser: the same stack driven through real Chromium (playwright-core).
 * The e2e and browser projects each start their own stack (test/support/stack-setup.ts) with a
 * throw-away state directory, and provide its URL as inject("baseUrl").
 */
export default defineConfig({
  test: {
    // The JSON report is what .ci/run counts for its closing `N passed, N failed` line.
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
    // Most files wait on workerd, Chromium or loopback I/O rather than burn CPU, so run two at
    // once even on CI's 2 cores (Vitest's default there would be one file at a time).
    maxWorkers: 2,
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
              bindings: { ALLOW_ANONYMOUS: "true", UPLOAD_SECRET: "test-secret", CORS_ORIGINS: "*", BODY_IDLE_TIMEOUT_SECONDS: "3" },
            },
          }),
        ],
        test: {
          name: "workerd",
          include: ["**/*.workerd.test.ts"],
          exclude: ["**/node_modules/**"],
          testTimeout: 60_000,
          // A local S3-compatible server (s3rver + harness extension) for the S3 driver's tests;
          // its endpoint reaches the tests in workerd as inject("s3").
          globalSetup: ["test/support/s3-server.ts"],
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.e2e.test.ts"],
          environment: "node",
          globalSetup: ["test/support/stack-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/browser/**/*.browser.test.ts"],
          environment: "node",
          globalSetup: ["test/support/stack-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // One Chromium at a time: CI has two cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
