import { runDriverConformance } from "../../edge/storage/conformance.ts";
import { s3 } from "./s3-support.ts";

// The same suite as the R2 binding's, against a real S3 server: Ceph RGW on loopback.
runDriverConformance("s3 (Ceph RGW)", () => s3(), { copy: true });
