"""headers: reports two request headers as JSON and sets X-Sample; entry point is not `main`."""

import json

import azure.functions as func


def show_headers(req: func.HttpRequest) -> func.HttpResponse:
    seen = {name: req.headers.get(name) for name in ("x-custom", "user-agent")}
    return func.HttpResponse(
        json.dumps(seen, separators=(",", ":")),
        mimetype="application/json",
        headers={"X-Sample": "v1"},
    )
