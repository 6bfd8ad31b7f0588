/**
 * The driver an env asks for: the R2 binding BUCKET, or an S3-compatible store when STORAGE=s3
 * (edge/storage/s3-config.ts). One driver per binding or env, so its connection state and retry
 * budget are shared by every request of an isolate.
 */
import type { StorageDriver } from "./driver.ts";
import { createR2Driver } from "./r2.ts";
import { createS3Driver } from "./s3.ts";
import { storageChoice, type StorageVars } from "./s3-config.ts";

const drivers = new WeakMap<object, StorageDriver>();

/**
 * The driver for this env. Bad storage vars throw StorageConfigError (the HTTP layer answers
 * 500 CONFIG_INVALID naming the var).
 */
export function driverFor(env: StorageVars & { BUCKET: R2Bucket }): StorageDriver {
  const choice = storageChoice(env);
  const owner: object = choice.kind === "r2" ? env.BUCKET : env;
  let driver = drivers.get(owner);
  if (!driver) {
    driver = choice.kind === "r2" ? createR2Driver(env.BUCKET) : createS3Driver(choice.options);
    drivers.set(owner, driver);
  }
  return driver;
}
