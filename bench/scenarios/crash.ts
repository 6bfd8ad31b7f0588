/**
 * Item 5: crash cost. The client is SIGKILLed once just over half the file (50% + 12.5 MiB, mid-
 * PATCH and mid-part) has been written to the socket,
 * then run again with the same state. Bytes re-sent are counted on the wire (a counting proxy in
 * front of each server: everything received minus the file size); bytes re-hashed are what the
 * two runs hashed together minus the file size. The kill-time hash count comes from the client's
 * own counter, which moves per 4 MiB slice: it can be short by up to one slice.
 *
 * Peer: tus-js-client that hashes the whole file up front (to declare a verifiable digest) ->
 * @tus/server + file-store; it keeps no hasher state, so the second run hashes everything again.
 */
import { join } from "node:path";
import { runChild } from "../child.ts";
import type { NodeClientOutput } from "../children/node-client.ts";
import type { PeerClientOutput } from "../children/peer-client.ts";
import { startProxy } from "../proxy.ts";
import { type BenchContext, MiB, row, type Row, type Scenario } from "../types.ts";
import { startPeerServer } from "./peer.ts";

const CHUNK = 32 * MiB; // the client library's default chunk size, used by the peer too

export const crash: Scenario = {
  name: "crash",
  items: [5],
  async run(ctx: BenchContext): Promise<Row[]> {
    const size = ctx.sizes.crash;
    const f = await ctx.file("crash", size);
    const label = `${size / MiB} MiB`;
    // Just past half way, in the middle of a PATCH and of an 8 MiB part: 50% exactly is a chunk
    // boundary (32 MiB chunks), where a kill costs any chunked uploader nothing.
    const killAt = Math.min(size / 2 + 12.5 * MiB, size * 0.75) / size;

    ctx.log(`crash: client library, SIGKILL at ${(killAt * 100).toFixed(1)}% of ${label}, then resume`);
    const proxy = await startProxy(ctx.baseline.edgeUrl);
    let ours: { reHashed: number; reSent: number; resumedHashAt?: number; resumedUploadAt?: number };
    try {
      const input = { file: f.path, endpoint: `${proxy.url}/files`, stateDir: join(ctx.dir, "crash-state") };
      const first = await runChild<NodeClientOutput>("node-client.ts", { ...input, killAt });
      if (!first.out.killed) throw new Error(`crash: the first run was not killed: ${JSON.stringify(first.out)}`);
      const up1 = proxy.upBytes;
      proxy.reset();
      const second = await runChild<NodeClientOutput>("node-client.ts", input);
      if (second.out.digest !== f.digest) throw new Error(`crash: resumed upload gave ${second.out.digest ?? second.out.error}`);
      ours = {
        reHashed: Math.max(0, first.out.hashRead + second.out.hashRead - size),
        reSent: Math.max(0, up1 + proxy.upBytes - size),
        resumedHashAt: second.out.resumedHashAt,
        resumedUploadAt: second.out.resumedUploadAt,
      };
    } finally {
      await proxy.close();
    }

    ctx.log("crash: tus-js-client (hash up front) -> @tus/server, same kill");
    const peerServer = await startPeerServer(join(ctx.dir, "tus-crash"));
    const peerProxy = await startProxy(new URL(peerServer.endpoint).origin);
    let peer: { reHashed: number; reSent: number };
    try {
      const input = { file: f.path, endpoint: `${peerProxy.url}/files`, urlStorage: join(ctx.dir, "peer-crash.json"), chunkSize: CHUNK, hashFirst: true };
      const first = await runChild<PeerClientOutput>("peer-client.ts", { ...input, killAt });
      if (!first.out.killed) throw new Error(`crash: the peer was not killed: ${JSON.stringify(first.out)}`);
      const up1 = peerProxy.upBytes;
      peerProxy.reset();
      const second = await runChild<PeerClientOutput>("peer-client.ts", input);
      if (second.out.error) throw new Error(`crash: peer resume: ${second.out.error}`);
      if (second.out.resumedUploadAt === undefined) throw new Error("crash: the peer did not resume (started a new upload)");
      peer = { reHashed: Math.max(0, first.out.hashRead + second.out.hashRead - size), reSent: Math.max(0, up1 + peerProxy.upBytes - size) };
    } finally {
      await peerProxy.close();
      peerServer.close();
    }

    const at = (n: number | undefined) => (n === undefined ? "-" : `${(n / MiB).toFixed(1)} MiB`);
    return [
      row({
        item: 5,
        metric: `Crash just past 50% of ${label}: bytes re-hashed after resume`,
        value: ours.reHashed / MiB,
        unit: "MiB",
        baseline: peer.reHashed / MiB,
        baselineLabel: "tus-js-client hashing up front (re-hashes the whole file)",
        target: { on: "value", direction: "lower", limit: 16, text: "<= 16 MiB" },
        note: `hashing resumed at ${at(ours.resumedHashAt)}; kill-time count can be short by one 4 MiB slice`,
      }),
      row({
        item: 5,
        metric: `Crash just past 50% of ${label}: bytes re-sent after resume`,
        value: ours.reSent / MiB,
        unit: "MiB",
        baseline: peer.reSent / MiB,
        baselineLabel: "tus-js-client -> @tus/server (keeps every byte it received)",
        target: { on: "value", direction: "lower", limit: CHUNK / MiB, text: `<= one chunk (${CHUNK / MiB} MiB)` },
        note: `killed at ${at(killAt * size)} (mid-PATCH); upload resumed at ${at(ours.resumedUploadAt)}; counted on the wire, HTTP headers included`,
      }),
    ];
  },
};
