import { env } from "cloudflare:test";
import { runDriverConformance } from "../../edge/storage/conformance.ts";
import { createR2Driver } from "../../edge/storage/r2.ts";

declare module "cloudflare:test" {
  interface ProvidedEnv {
    BUCKET: R2Bucket;
  }
}

runDriverConformance("r2 binding", () => createR2Driver(env.BUCKET), { copy: false });
