/** The storage layer's public surface: the driver interface, its errors, and the drivers. */
export * from "./driver.ts";
export { withKeyValidation, keyProblem, prefixProblem, MAX_KEY_LENGTH } from "./base.ts";
export { createMemoryDriver, type MemoryDriverOptions } from "./memory.ts";
export { createR2Driver } from "./r2.ts";
