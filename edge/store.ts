/**
 * The HTTP layer's one door to storage: the driver for this env (R2 binding or S3), and the
 * writer and registry helpers (re-exported so the routes and the Durable Object import storage
 * from one place), plus
 * the one query the purge adds: remove a half-created upload's keys once they are old enough.
 */
import type { Env } from "./env.ts";
import type { StorageDriver } from "./storage/driver.ts";
import { createR2Driver } from "./storage/r2.ts";
import { createS3Driver } from "./storage/s3.ts";
import { StorageConfigError, storageChoice, type StorageChoice } from "./storage/s3-config.ts";
import { ApiError } from "./errors.ts";

export { isValidNamespace } from "./paths.ts";
export { isLinked, listUploads, openBlob, removeStaleUploadKeys } from "./registry.ts";
export {
  BodyTooLargeError,
  ChecksumMismatchError,
  DigestConflictError,
  DigestMismatchError,
  UploadTooLargeError,
  UploadUnknownError,
  createUploadWriter,
  resumeUploadWriter,
  type UploadWriter,
} from "./writer.ts";

const drivers = new WeakMap<object, StorageDriver>();

/**
 * The driver for this env: the R2 binding BUCKET, or an S3-compatible store when STORAGE=s3
 * (edge/storage/s3-config.ts); one per binding or env. Bad storage vars: 500 CONFIG_INVALID.
 */
export function driverFor(env: Env): StorageDriver {
  let choice: StorageChoice;
  try {
    choice = storageChoice(env);
  } catch (err) {
    if (err instanceof StorageConfigError) throw new ApiError(500, "CONFIG_INVALID", `worker misconfigured: ${err.message}`);
    throw err;
  }
  const owner: object = choice.kind === "r2" ? env.BUCKET : env;
  let driver = drivers.get(owner);
  if (!driver) {
    driver = choice.kind === "r2" ? createR2Driver(env.BUCKET) : createS3Driver(choice.options);
    drivers.set(owner, driver);
  }
  return driver;
}
