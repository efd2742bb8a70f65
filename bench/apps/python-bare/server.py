"""The Python v1 sample's `hello` function behind a bare HTTP server: the baseline the
language-worker path is measured against (same function code, no host in between)."""
import importlib.util
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

APP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "samples", "python-v1")
spec = importlib.util.spec_from_file_location("hello", os.path.join(APP, "hello", "__init__.py"))
hello = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hello)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        req = func.HttpRequest(
            method="GET",
            url=f"http://{self.headers.get('host', 'localhost')}{self.path}",
            headers=dict(self.headers.items()),
            params=dict(parse_qsl(url.query)),
            body=self.rfile.read(length) if length else b"",
        )
        resp = hello.main(req)
        body = resp.get_body()
        self.send_response(resp.status_code)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if "content-type" not in {k.lower() for k in resp.headers.keys()}:
            self.send_header("Content-Type", f"{resp.mimetype}; charset={resp.charset}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
