// Custom handler of the Node sample app (no dependencies).
//
// Azure Functions calls it in two ways, and it answers both:
// - forwarded HTTP (enableForwardingHttpRequest: true): the client's own request, e.g. GET /api/hello;
// - the JSON invocation protocol: POST /<FunctionName> with {"Data": ..., "Metadata": ...}.
//   Timer and queue functions (nightly, work) and HTTP functions with a queue output (enqueue)
//   always come this way, even with forwarding on.
"use strict";

const http = require("http");

const GREETING = process.env.GREETING || "Hello";
const PRODUCTS = /^\/api\/products\/([A-Za-z]+)(?:\/(-?\d+))?\/?$/i;

const greet = (name) => `${GREETING}, ${name || "world"}!`;
const product = (category, id) => ({ category, id: id === undefined || id === null || id === "" ? null : Number(id) });

// The occurrence a timer run is for (TimerInfo.ScheduleStatus.Next), else the time now.
function scheduledTime(timer) {
  if (typeof timer === "string") {
    try {
      timer = JSON.parse(timer);
    } catch {
      timer = null;
    }
  }
  const status = timer && typeof timer === "object" ? timer.ScheduleStatus : null;
  const occurrence = status && typeof status === "object" ? status.Next : null;
  return typeof occurrence === "string" && occurrence ? occurrence : new Date().toISOString();
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// A queue message as a JSON object, or null when it is not one. The message may arrive as an
// object, as its JSON text, or as that text JSON-encoded once more; each layer is unwrapped.
function queueObject(value) {
  for (let i = 0; i < 3; i++) {
    if (isObject(value)) return value;
    if (typeof value !== "string") return null;
    try {
      value = JSON.parse(value);
    } catch {
      return null;
    }
  }
  return isObject(value) ? value : null;
}

function reply(res, status, body, contentType, headers) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body || "");
  const h = Object.assign({}, headers || {}, { "Content-Length": buf.length });
  if (contentType) h["Content-Type"] = contentType;
  res.writeHead(status, h);
  res.end(buf);
}

function forwarded(req, res, url, body) {
  const path = url.pathname;
  const lower = path.toLowerCase().replace(/\/$/, "");
  if (lower === "/api/hello") {
    let name = url.searchParams.get("name");
    if (name === null && body.length) {
      try {
        name = JSON.parse(body.toString("utf8")).name;
      } catch {
        name = body.toString("utf8");
      }
    }
    return reply(res, 200, greet(name), "text/plain; charset=utf-8");
  }
  const m = PRODUCTS.exec(path);
  if (m) return reply(res, 200, JSON.stringify(product(m[1], m[2])), "application/json; charset=utf-8");
  if (lower === "/api/report") return reply(res, 200, JSON.stringify({ report: "ok" }), "application/json; charset=utf-8");
  if (lower === "/api/echo") return reply(res, 200, body, req.headers["content-type"] || "application/octet-stream");
  return reply(res, 404, "");
}

function invocation(res, fn, raw) {
  const request = JSON.parse(raw.toString("utf8") || "{}");
  const data = request.Data || {};
  const r = data.req || {};
  let result;
  switch (fn.toLowerCase()) {
    case "nightly": {
      // Timer (binding "timer"): fan three jobs out to queue `jobs` through output "msg".
      const batch = scheduledTime(data.timer);
      result = {
        Outputs: { msg: [1, 2, 3].map((job) => ({ job, batch })) },
        Logs: ["fanned out 3 jobs"],
        ReturnValue: null,
      };
      break;
    }
    case "work": {
      // Queue trigger (binding "msg" on `jobs`): a failure makes the host retry the message,
      // then move it to `jobs-poison` after maxDequeueCount.
      const job = queueObject(data.msg);
      if (job === null) return reply(res, 500, "work: the message is not a JSON object", "text/plain");
      if (job.poison === true) return reply(res, 500, "work: a poison message", "text/plain");
      const id = job.job === undefined ? null : job.job;
      result = {
        Outputs: { result: { job: id, done: true, by: "node-handler" } },
        Logs: [`finished job ${id}`],
        ReturnValue: null,
      };
      break;
    }
    case "enqueue": {
      // Not forwarded (it has a queue output): the body text becomes one message on `jobs`.
      let body = r.Body;
      if (body === undefined || body === null) body = "";
      else if (typeof body !== "string") body = JSON.stringify(body);
      result = {
        Outputs: {
          res: { statusCode: 202, body: "queued", headers: { "Content-Type": "text/plain; charset=utf-8" } },
          msg: body,
        },
        Logs: ["queued 1 message"],
      };
      break;
    }
    case "hello": {
      let who = (r.Query || {}).name;
      if (who === undefined && r.Body) {
        try {
          who = JSON.parse(r.Body).name;
        } catch {
          who = r.Body;
        }
      }
      result = {
        Outputs: { res: { statusCode: 200, body: greet(who), headers: { "Content-Type": "text/plain; charset=utf-8" } } },
        Logs: [`greeted ${who || "world"}`],
      };
      break;
    }
    case "products": {
      const p = r.Params || {};
      result = {
        ReturnValue: { statusCode: 200, headers: { "Content-Type": "application/json; charset=utf-8" }, body: product(p.category, p.id) },
        Logs: [`looked up ${p.category}`],
      };
      break;
    }
    case "report":
      result = { Outputs: { res: { statusCode: 200, body: JSON.stringify({ report: "ok" }), headers: { "Content-Type": "application/json" } } } };
      break;
    case "echo": {
      const ct = ((r.Headers || {})["Content-Type"] || ["application/octet-stream"])[0];
      const media = ct.split(";")[0].trim().toLowerCase();
      const body = r.Body || "";
      // Bytes travel as base64; the host decodes a base64 return value into bytes.
      result = media === "application/octet-stream" || media.includes("multipart/")
        ? { ReturnValue: body }
        : { ReturnValue: { statusCode: 200, headers: { "Content-Type": ct }, body } };
      break;
    }
    default:
      return reply(res, 404, "");
  }
  reply(res, 200, JSON.stringify(result), "application/json");
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, "http://localhost");
    if (url.pathname.toLowerCase().startsWith("/api/")) return forwarded(req, res, url, body);
    const fn = url.pathname.replace(/^\/+|\/+$/g, "");
    if (req.method === "POST" && fn) return invocation(res, fn, body);
    reply(res, 200, "ok", "text/plain");
  });
});
server.keepAliveTimeout = 120000;
server.listen(Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT || 8080), "127.0.0.1");
