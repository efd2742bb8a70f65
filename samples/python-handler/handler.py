"""Custom handler of the Python sample app (standard library only).

Azure Functions calls it in two ways, and it answers both:
- forwarded HTTP (enableForwardingHttpRequest: true): the client's own request, e.g. GET /api/hello;
- the JSON invocation protocol: POST /<FunctionName> with {"Data": ..., "Metadata": ...}.
  Timer and queue functions (nightly, work) and HTTP functions with a queue output (enqueue)
  always come this way, even with forwarding on.
"""

import base64
import json
import os
import re
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GREETING = os.environ.get("GREETING", "Hello")
PRODUCTS = re.compile(r"^/api/products/([A-Za-z]+)(?:/(-?\d+))?/?$", re.IGNORECASE)


def greet(name):
    return f"{GREETING}, {name or 'world'}!"


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def product(category, product_id):
    return {"category": category, "id": int(product_id) if product_id not in (None, "") else None}


def scheduled_time(timer):
    """The occurrence a timer run is for (TimerInfo.ScheduleStatus.Next), else the UTC time now."""
    if isinstance(timer, str):
        try:
            timer = json.loads(timer)
        except ValueError:
            timer = None
    status = timer.get("ScheduleStatus") if isinstance(timer, dict) else None
    occurrence = status.get("Next") if isinstance(status, dict) else None
    if isinstance(occurrence, str) and occurrence:
        return occurrence
    return datetime.now(timezone.utc).isoformat()


def queue_object(value):
    """A queue message as a JSON object, or None when it is not one.

    The message may arrive as an object, as its JSON text, or as that text JSON-encoded
    once more (a JSON string holding the JSON text); each layer is unwrapped.
    """
    for _ in range(3):
        if isinstance(value, dict):
            return value
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            return None
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this every response waits for a delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def reply(self, status, body=b"", content_type=None, headers=None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def do_PUT(self):
        self.route()

    def route(self):
        url = urlsplit(self.path)
        path = url.path
        body = self.read_body()
        if path.lower().startswith("/api/"):
            return self.forwarded(path, parse_qs(url.query), body)
        if self.command == "POST" and path.strip("/"):
            return self.invocation(path.strip("/"), body)
        # Readiness probe and anything else.
        return self.reply(200, b"ok", "text/plain")

    # Forwarded requests: the handler does its own routing.
    def forwarded(self, path, query, body):
        lower = path.lower().rstrip("/")
        if lower == "/api/hello":
            name = (query.get("name") or [None])[0]
            if name is None and body:
                try:
                    name = json.loads(body).get("name")
                except (ValueError, AttributeError):
                    name = body.decode("utf-8", "replace")
            return self.reply(200, greet(name).encode(), "text/plain; charset=utf-8")
        match = PRODUCTS.match(path)
        if match:
            payload = compact(product(match.group(1), match.group(2))).encode()
            return self.reply(200, payload, "application/json; charset=utf-8")
        if lower == "/api/report":
            return self.reply(200, compact({"report": "ok"}).encode(), "application/json; charset=utf-8")
        if lower == "/api/echo":
            content_type = self.headers.get("Content-Type") or "application/octet-stream"
            return self.reply(200, body, content_type)
        return self.reply(404)

    # The JSON invocation protocol.
    def invocation(self, function, raw):
        request = json.loads(raw or b"{}")
        data = request.get("Data") or {}
        req = data.get("req") or {}
        name = function.lower()
        if name == "nightly":
            # Timer (binding "timer"): fan three jobs out to queue `jobs` through output "msg".
            batch = scheduled_time(data.get("timer"))
            result = {
                "Outputs": {"msg": [{"job": i, "batch": batch} for i in range(1, 4)]},
                "Logs": ["fanned out 3 jobs"],
                "ReturnValue": None,
            }
        elif name == "work":
            # Queue trigger (binding "msg" on `jobs`): a failure makes the host retry the
            # message, then move it to `jobs-poison` after maxDequeueCount.
            job = queue_object(data.get("msg"))
            if job is None:
                return self.reply(500, b"work: the message is not a JSON object", "text/plain")
            if job.get("poison") is True:
                return self.reply(500, b"work: a poison message", "text/plain")
            result = {
                "Outputs": {"result": {"job": job.get("job"), "done": True, "by": "python-handler"}},
                "Logs": [f"finished job {job.get('job')}"],
                "ReturnValue": None,
            }
        elif name == "enqueue":
            # Not forwarded (it has a queue output): the body text becomes one message on `jobs`.
            body = req.get("Body")
            if body is None:
                body = ""
            elif not isinstance(body, str):
                body = compact(body)
            result = {
                "Outputs": {
                    "res": {"statusCode": 202, "body": "queued", "headers": {"Content-Type": "text/plain; charset=utf-8"}},
                    "msg": body,
                },
                "Logs": ["queued 1 message"],
            }
        elif name == "hello":
            who = req.get("Query", {}).get("name")
            if who is None and req.get("Body"):
                try:
                    who = json.loads(req["Body"]).get("name")
                except (ValueError, AttributeError):
                    who = req["Body"]
            text = greet(who)
            result = {
                "Outputs": {"res": {"statusCode": 200, "body": text, "headers": {"Content-Type": "text/plain; charset=utf-8"}}},
                "Logs": [f"greeted {who or 'world'}"],
            }
        elif name == "products":
            params = req.get("Params", {})
            result = {
                "ReturnValue": {
                    "statusCode": 200,
                    "headers": {"Content-Type": "application/json; charset=utf-8"},
                    "body": product(params.get("category"), params.get("id")),
                },
                "Logs": [f"looked up {params.get('category')}"],
            }
        elif name == "report":
            result = {
                "Outputs": {"res": {"statusCode": 200, "body": compact({"report": "ok"}), "headers": {"Content-Type": "application/json"}}},
            }
        elif name == "echo":
            content_type = (req.get("Headers", {}).get("Content-Type") or ["application/octet-stream"])[0]
            body = req.get("Body", "")
            media = content_type.split(";")[0].strip().lower()
            if media == "application/octet-stream" or "multipart/" in media:
                # Bytes travel as base64; the host decodes a base64 return value into bytes.
                result = {"ReturnValue": body}
            else:
                result = {"ReturnValue": {"statusCode": 200, "headers": {"Content-Type": content_type}, "body": body}}
        else:
            return self.reply(404, b"", "text/plain")
        self.reply(200, compact(result).encode(), "application/json")


def main():
    port = int(os.environ.get("FUNCTIONS_CUSTOMHANDLER_PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
