import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env.ts";

/** One Durable Object per upload: serialises every request for that upload. */
export class UploadObject extends DurableObject<Env> {}
