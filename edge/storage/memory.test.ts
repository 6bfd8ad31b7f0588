import { runDriverConformance } from "./conformance.ts";
import { createMemoryDriver } from "./memory.ts";

runDriverConformance("memory (with server-side copy)", () => createMemoryDriver(), { copy: true });
runDriverConformance("memory (no copy, like the R2 binding)", () => createMemoryDriver({ copy: false }), { copy: false });
