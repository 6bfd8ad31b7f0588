// A stand-in for the host app's backend in the workerd tests (vitest.config.ts, project
// "workerd"): the consumer of the UPLOAD_EVENTS queue and, as the edge's outbound service, the
// receiver of its WEBHOOK_URL POSTs. It keeps what it received, per upload id, for the tests to
// read through the EVENT_SINK service binding, and fails the webhook for an upload as many times
// as a test asked (`/fail?id=&count=`), to drive the edge's retries.
const queue = [];
const webhook = [];
const failures = new Map();

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.hostname === "webhook.test" && url.pathname === "/hook") {
      const body = await request.text();
      let id;
      try {
        id = JSON.parse(body).id;
      } catch {
        id = undefined;
      }
      const left = failures.get(id) ?? 0;
      if (left > 0) failures.set(id, left - 1);
      const status = left > 0 ? 503 : 204;
      webhook.push({ id, status, headers: Object.fromEntries(request.headers), body });
      return new Response(null, { status });
    }
    if (url.hostname === "sink" && url.pathname === "/fail") {
      failures.set(url.searchParams.get("id"), Number(url.searchParams.get("count")));
      return new Response(null, { status: 204 });
    }
    if (url.hostname === "sink" && url.pathname === "/events") {
      const id = url.searchParams.get("id");
      return Response.json({ queue: queue.filter((m) => m.id === id), webhook: webhook.filter((w) => w.id === id) });
    }
    return new Response(`event-sink: unexpected request ${request.method} ${request.url}`, { status: 502 });
  },

  async queue(batch) {
    for (const message of batch.messages) {
      queue.push({ id: message.body?.id, body: message.body, attempts: message.attempts });
      message.ack();
    }
  },
};
