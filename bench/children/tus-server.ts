/**
 * The peer server: @tus/server with @tus/file-store on this machine, in its own process so its
 * CPU is its own. Prints `{"port":N}` once listening. Argument: the directory to store into.
 */
import { createServer } from "node:http";
import { FileStore } from "@tus/file-store";
import { Server } from "@tus/server";

const directory = process.argv[2];
if (!directory) throw new Error("usage: tus-server.ts <dir>");
const tus = new Server({ path: "/files", datastore: new FileStore({ directory }) });
const server = createServer((req, res) => void tus.handle(req, res));
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
});
