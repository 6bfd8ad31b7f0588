/**
 * The peer server: @tus/server in its own process, so its CPU is its own. Prints `{"port":N}`
 * once listening. Argument: the directory to store into (@tus/file-store), or `--s3 <json>` with
 * an S3 server's endpoint, region, bucket and keys (@tus/s3-store, the equal-storage peer).
 */
import { createServer } from "node:http";
import { FileStore } from "@tus/file-store";
import { S3Store } from "@tus/s3-store";
import { Server } from "@tus/server";

interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  partSize?: number;
}

function datastore() {
  if (process.argv[2] === "--s3") {
    const s3 = JSON.parse(process.argv[3] ?? "{}") as S3Target;
    return new S3Store({
      // @tus/s3-store's default is 8 MiB, the edge's part size too: the same S3 requests per byte.
      ...(s3.partSize ? { partSize: s3.partSize } : {}),
      s3ClientConfig: {
        bucket: s3.bucket,
        region: s3.region,
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        // Ceph RGW 16 predates the SDK's default trailing CRC checksums and refuses them.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      },
    });
  }
  const directory = process.argv[2];
  if (!directory) throw new Error("usage: tus-server.ts <dir> | --s3 <json>");
  return new FileStore({ directory });
}

const tus = new Server({ path: "/files", datastore: datastore() });
const server = createServer((req, res) => void tus.handle(req, res));
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
});
