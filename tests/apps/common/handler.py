"""Custom handler shared by the test apps: it reports what it received, and misbehaves on request.

JSON invocation protocol (POST /<FunctionName>):
- crash: exits the process at once;
- a timer (Data.myTimer): logs what the TimerInfo said;
- a queue message (Data.msg): "fail" fails, "sleep:<ms>" sleeps first, "retry:<n>" fails
  until the attempt whose Metadata.RetryContext.RetryCount is n, anything else is logged
  (a JSON object with "dest" is also copied to the `copy` output);
- fanout: answers 201 and writes the request body twice to the `out` queue output;
- slow: sleeps Query.ms milliseconds;
- anything else: returns the function name, method, route values and the whole payload.
Forwarded requests (/api/...): /api/slow?ms=, /api/crash, /api/size, otherwise a report of the request.
"""

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def compact(value):
    return json.dumps(value, separators=(",", ":")).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def do_PUT(self):
        self.route()

    def do_DELETE(self):
        self.route()

    def route(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path.lower().startswith("/api/"):
            name = url.path[5:].split("/")[0].lower()
            if name == "crash":
                os._exit(3)
            if name == "slow":
                time.sleep(int(query.get("ms", "0")) / 1000)
                return self.reply(200, b"slept", "text/plain")
            if name == "size":
                return self.reply(200, str(len(body)).encode(), "text/plain")
            return self.reply(200, compact({
                "pid": os.getpid(),
                "path": url.path,
                "query": url.query,
                "method": self.command,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }))
        if self.command != "POST" or not url.path.strip("/"):
            return self.reply(200, b"ok", "text/plain")
        function = url.path.strip("/")
        payload = json.loads(body or b"{}")
        timer = payload.get("Data", {}).get("myTimer")
        if isinstance(timer, dict):
            # A timer invocation: say what arrived, and return nothing (timers have no output).
            status = timer.get("ScheduleStatus")
            line = (f"timer {function} IsPastDue={timer.get('IsPastDue')} "
                    f"AdjustForDST={timer.get('Schedule', {}).get('AdjustForDST')} "
                    f"monitored={status is not None} sys={payload.get('Metadata', {}).get('sys', {}).get('MethodName')}")
            return self.reply(200, compact({"Outputs": {}, "Logs": [line], "ReturnValue": None}))
        data = payload.get("Data", {})
        if "msg" in data:
            # A queue message: "fail" fails the invocation; anything else is logged.
            text = data["msg"]
            if text == "fail":
                return self.reply(500, b"failing on purpose", "text/plain")
            retry = payload.get("Metadata", {}).get("RetryContext")
            if text.startswith("retry:"):
                # "retry:<n>": fails until the attempt with RetryCount n (retry policies).
                count = (retry or {}).get("RetryCount", 0)
                line = (f"attempt {count} of {text} max={(retry or {}).get('MaxRetryCount')} "
                        f"previous={((retry or {}).get('Exception') or {}).get('Message')}")
                if count < int(text[6:]):
                    return self.reply(500, line.encode(), "text/plain")
            if text.startswith("sleep:"):
                time.sleep(int(text[6:]) / 1000)
            dequeue = payload.get("Metadata", {}).get("DequeueCount")
            line = f"queue {function} got {text} dequeue={dequeue}"
            if retry is not None:
                line += (f" retry={retry.get('RetryCount')}/{retry.get('MaxRetryCount')}"
                         f" previous={(retry.get('Exception') or {}).get('Message')}")
            # A JSON message naming a "dest" is copied to the `copy` output ("{dest}-...").
            outputs = {"copy": text} if text.startswith("{") and "dest" in json.loads(text) else {}
            return self.reply(200, compact({"Outputs": outputs, "Logs": [line], "ReturnValue": None}))
        req = data.get("req", {})
        if function == "fanout":
            # An HTTP function with a queue output: the body, twice, to "out-{target}-{region}".
            body = req.get("Body") or ""
            return self.reply(200, compact({"Outputs": {
                "res": {"statusCode": 201, "body": "sent"},
                "out": [body, body],
            }, "Logs": [], "ReturnValue": None}))
        if function == "crash":
            os._exit(3)
        if function == "slow":
            time.sleep(int(req.get("Query", {}).get("ms", "0")) / 1000)
        result = {
            "ReturnValue": {
                "statusCode": 200,
                "headers": {"Content-Type": "application/json"},
                "body": {
                    "function": function,
                    "method": req.get("Method"),
                    "params": req.get("Params"),
                    "pid": os.getpid(),
                    "payload": payload,
                    "invocationId": self.headers.get("X-Azure-Functions-InvocationId"),
                    "hostVersion": self.headers.get("X-Azure-Functions-HostVersion"),
                    "env": {k: os.environ.get(k) for k in ("FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_APP_ROOT_PATH", "TEST_SETTING")},
                },
            },
            "Logs": [f"handled {function}"],
        }
        self.reply(200, compact(result))


def main():
    # Simulates a handler that is slow to start.
    time.sleep(int(os.environ.get("STARTUP_DELAY_MS", "0")) / 1000)
    port = int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
