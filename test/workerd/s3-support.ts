/** Helpers for the S3 tests inside workerd: a driver on the run's S3 server (Ceph RGW), a fetch that counts bytes. */
import { AwsClient } from "aws4fetch";
import { inject } from "vitest";
import { createS3Driver, type S3DriverOptions } from "../../edge/storage/s3.ts";
import type { StorageDriver } from "../../edge/storage/driver.ts";

declare module "vitest" {
  // Provided by test/support/s3-server.ts (type-checked with the Node project, not this one).
  export interface ProvidedContext {
    s3: { endpoint: string; region: string; bucket: string; accessKeyId: string; secretAccessKey: string };
  }
}

/** The run's S3 server (test/support/s3-server.ts, started by the workerd-s3 project's globalSetup). */
export function s3Server() {
  return inject("s3");
}

/** A driver on the test server's bucket; `extra` overrides any option. */
export function s3(extra: Partial<S3DriverOptions> = {}): StorageDriver {
  const { endpoint, region, bucket, accessKeyId, secretAccessKey } = s3Server();
  return createS3Driver({ endpoint, region, bucket, accessKeyId, secretAccessKey, ...extra });
}

/** The multipart uploads the store holds open under `prefix` (ListMultipartUploads, asked directly). */
export async function openMultipartUploads(prefix: string): Promise<{ key: string; uploadId: string }[]> {
  const { endpoint, region, bucket, accessKeyId, secretAccessKey } = s3Server();
  const client = new AwsClient({ accessKeyId, secretAccessKey, region, service: "s3" });
  const res = await client.fetch(`${endpoint}/${bucket}?uploads&prefix=${encodeURIComponent(prefix)}`);
  if (!res.ok) throw new Error(`ListMultipartUploads: ${res.status} ${await res.text()}`);
  const xml = await res.text();
  return [...xml.matchAll(/<Upload>.*?<Key>([^<]*)<\/Key>.*?<UploadId>([^<]*)<\/UploadId>.*?<\/Upload>/gs)].map((m) => ({
    key: m[1] as string,
    uploadId: m[2] as string,
  }));
}

/** Upload ids of the multipart uploads open for exactly `key`. */
export async function multipartUploadsOf(key: string): Promise<string[]> {
  return (await openMultipartUploads(key)).filter((u) => u.key === key).map((u) => u.uploadId);
}

export interface ByteCounter {
  /** Request body bytes sent and response body bytes received, per S3 operation label. */
  sent: number;
  received: number;
  requests: { method: string; url: string; sent: number; received: number; copySource: boolean }[];
  reset(): void;
  fetch: (request: Request) => Promise<Response>;
}

/** A fetch that counts every body byte passing through the driver, both ways. */
export function countingFetch(): ByteCounter {
  const counter: ByteCounter = {
    sent: 0,
    received: 0,
    requests: [],
    reset() {
      counter.sent = 0;
      counter.received = 0;
      counter.requests = [];
    },
    async fetch(request) {
      const entry = { method: request.method, url: request.url, sent: 0, received: 0, copySource: request.headers.has("x-amz-copy-source") };
      counter.requests.push(entry);
      let outgoing = request;
      if (request.body) {
        const length = request.headers.get("content-length");
        const counted = counting(request.body, (n) => {
          entry.sent += n;
          counter.sent += n;
        });
        // Keep the length known (S3 refuses chunked bodies): a FixedLengthStream carries it.
        let body: ReadableStream<Uint8Array> = counted;
        if (length !== null) {
          const fixed = new FixedLengthStream(Number(length));
          void counted.pipeTo(fixed.writable).catch(() => undefined);
          body = fixed.readable as ReadableStream<Uint8Array>;
        }
        outgoing = new Request(request, { body });
      }
      const response = await fetch(outgoing);
      if (!response.body) return response;
      const counted = counting(response.body, (n) => {
        entry.received += n;
        counter.received += n;
      });
      return new Response(counted, response);
    },
  };
  return counter;
}

/** `body` as it is, telling `add` the size of each chunk that passes. */
function counting(body: ReadableStream<Uint8Array>, add: (bytes: number) => void): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        add(chunk.length);
        controller.enqueue(chunk);
      },
    }),
  );
}
