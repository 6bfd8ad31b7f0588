/** Exits with instructions when Node is older than 22.12. */
export function requireNode(): void;
/** Extracts hash-wasm's SHA-256 binary into shared/generated/ (idempotent). */
export function ensureGenerated(): Promise<void>;
