import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Vars of the edge for every workerd test (as `npm start` passes them), on R2 or on S3. */
const EDGE_BINDINGS = { ALLOW_ANONYMOUS: "true", UPLOAD_SECRET: "test-secret", CORS_ORIGINS: "*", BODY_IDLE_TIMEOUT_SECONDS: "3" };

/**
 * Completion events in the workerd project (test/workerd/events.workerd.test.ts): the edge sends
 * each finished upload's event to the queue UPLOAD_EVENTS and POSTs it to WEBHOOK_URL; both
 * reach test/support/event-sink.mjs, an auxiliary worker that is the queue's consumer and the
 * edge's outbound service (no test in this project fetches anything else), and that the tests
 * read through the EVENT_SINK binding. The secret is a Standard Webhooks `whsec_` one.
 */
const EVENT_OPTIONS = {
  bindings: {
    ...EDGE_BINDINGS,
    WEBHOOK_URL: "https://webhook.test/hook",
    WEBHOOK_SECRET: `whsec_${Buffer.from("edge-upload webhook test secret").toString("base64")}`,
  },
  queueProducers: { UPLOAD_EVENTS: { queueName: "upload-events" } },
  serviceBindings: { EVENT_SINK: "event-sink" },
  outboundService: "event-sink",
  workers: [
    {
      name: "event-sink",
      modules: true,
      scriptPath: "test/support/event-sink.mjs",
      compatibilityDate: "2026-10-01",
      queueConsumers: { "upload-events": { maxBatchTimeout: 0 } },
    },
  ],
};

/**
 * The tests that need the S3 store: the S3 driver's and writer's own, and the HTTP tests chosen to
 * run a second time with STORAGE=s3 (lifecycle and every finish path, blobs, store faults).
 */
const S3_TESTS = ["test/workerd/storage-s3*.workerd.test.ts", "test/workerd/writer-s3.workerd.test.ts", "test/workerd/http-s3.workerd.test.ts"];
const HTTP_ON_S3_TOO = ["test/workerd/http-blobs.workerd.test.ts", "test/workerd/http-store-faults.workerd.test.ts"];

/**
 * Five test projects, one `vitest run`:
 * - unit:    plain Node (shared code, client logic, the in-memory storage driver);
 * - workerd: inside real workerd with the R2 and Durable Object bindings of wrangler.jsonc;
 * - workerd-s3: the same, with STORAGE=s3 on a real S3 server (Ceph RGW, started for the run by
 *            test/support/s3-server.ts, which provides its endpoint as inject("s3"));
 * - e2e:     Node tests (tus-js-client, the CLI) against the `npm start` stack (vite dev + workerd)
 *            over real loopback HTTP;
 * - browser: the same stack driven through real Chromium (playwright-core), and through Firefox ESR
 *            and WebKitGTK as well in engines.browser.test.ts and element.browser.test.ts
 *            (test/support/browsers.ts).
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
          // Some unit tests hash or copy tens of MiB: on 2 shared cores next to workerd they can
          // pass Vitest's 5 s default without anything being wrong. Speed is the bench's job.
          testTimeout: 30_000,
        },
      },
      {
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.jsonc" }, miniflare: EVENT_OPTIONS })],
        test: {
          name: "workerd",
          include: ["**/*.workerd.test.ts"],
          exclude: ["**/node_modules/**", ...S3_TESTS],
          testTimeout: 60_000,
        },
      },
      {
        plugins: [
          // The gateway's address is known only once globalSetup has started it: inject() reads it.
          cloudflareTest(({ inject }) => {
            const s3 = inject("s3");
            return {
              wrangler: { configPath: "./wrangler.jsonc" },
              miniflare: {
                bindings: {
                  ...EDGE_BINDINGS,
                  STORAGE: "s3",
                  S3_ENDPOINT: s3.endpoint,
                  S3_REGION: s3.region,
                  S3_BUCKET: s3.bucket,
                  S3_ACCESS_KEY_ID: s3.accessKeyId,
                  S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
                },
              },
            };
          }),
        ],
        test: {
          name: "workerd-s3",
          include: [...S3_TESTS, ...HTTP_ON_S3_TOO],
          testTimeout: 60_000,
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
          // Browser files run in the one pool with the rest (two files at once, maxWorkers above).
          // With `fileParallelism: false` Vitest ran them one at a time, but only after every other
          // file (a group of their own): ~5 min after ~4, over the 10-minute aim.
        },
      },
    ],
  },
});
