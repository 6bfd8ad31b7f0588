import { runDriverConformance } from "../../edge/storage/conformance.ts";
import { s3 } from "./s3-support.ts";

// The same suite as the R2 binding's, against s3rver (+ harness extension) on loopback.
runDriverConformance("s3 (local S3-compatible server)", () => s3());
