"""Benchmark handler: records when each timer invocation arrives, in a file named by
TIMER_LOG, so the benchmark can measure how late each occurrence ran."""

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def reply(self, body, content_type="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(b"ok", "text/plain")

    def do_POST(self):
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with open(os.environ["TIMER_LOG"], "a") as f:
            f.write(f"{arrived:.6f}\n")
        self.reply(json.dumps({"Outputs": {}, "Logs": [], "ReturnValue": None}).encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])), Handler).serve_forever()
