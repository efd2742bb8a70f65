"""A hostile custom handler (standard library only): each function tries to break out of
its isolation and answers with what happened."""

import json
import os
import subprocess
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def peek(query):
    # Read any file: another app's code, /etc/shadow, the worker's data.
    path = query.get("path", [""])[0]
    try:
        with open(path, "rb") as f:
            return 200, {"read": len(f.read())}
    except OSError as e:
        return 200, {"refused": e.strerror}


def procs(_):
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    return 200, {"processes": len(pids), "pid": os.getpid()}


def whoami(_):
    writable = True
    try:
        with open("host.json", "a"):
            pass
    except OSError:
        writable = False
    return 200, {"uid": os.getuid(), "cwd": os.getcwd(), "codeWritable": writable, "env": sorted(os.environ)}


def hog(_):
    # Allocate far beyond the app's memory limit, touching every page.
    chunks = []
    for _ in range(2048):
        chunks.append(bytearray(1 << 20))
    return 200, {"allocated_mib": len(chunks)}


def bomb(_):
    children = 0
    try:
        for _ in range(10000):
            pid = os.fork()
            if pid == 0:
                time.sleep(3)
                os._exit(0)
            children += 1
    except OSError as e:
        return 200, {"children": children, "stopped": e.strerror}
    return 200, {"children": children, "stopped": None}


def sleep(_):
    time.sleep(60)
    return 200, {"slept": 60}


def unhide(query):
    # Take away what covers the worker's data (umount is set-user-ID root on most systems).
    path = query.get("path", [""])[0]
    done = subprocess.run(["umount", "-l", path], capture_output=True, text=True)
    return 200, {"rc": done.returncode, "stderr": done.stderr.strip()}


def escape(_):
    # A child in a session of its own, meant to outlive the handler.
    child = subprocess.Popen(["sleep", "617"], start_new_session=True)
    return 200, {"child": child.pid}


FUNCTIONS = {f.__name__: f for f in (peek, procs, whoami, hog, bomb, sleep, escape, unhide)}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def answer(self):
        url = urlsplit(self.path)
        name = url.path.rstrip("/").rsplit("/", 1)[-1].lower()
        if url.path.lower().startswith("/api/") and name in FUNCTIONS:
            status, body = FUNCTIONS[name](parse_qs(url.query))
        else:
            status, body = 200, {"ok": True}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = answer
    do_POST = answer


ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("FUNCTIONS_CUSTOMHANDLER_PORT", "8080"))), Handler).serve_forever()
