"""The Python v2 sample app: HTTP functions declared with decorators on one FunctionApp."""

import json
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello", methods=["GET", "POST"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    """Greets the `name` from the query string or a JSON body, else the world."""
    name = req.params.get("name")
    if not name:
        try:
            body = req.get_json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            name = body.get("name")
    return func.HttpResponse(f"Hello, {name or 'world'}!", mimetype="text/plain")


@app.route(
    route="products/{category:alpha}/{id:int?}",
    methods=["GET"],
    auth_level=func.AuthLevel.FUNCTION,
)
def products(req: func.HttpRequest) -> func.HttpResponse:
    """Echoes its route values (category, optional int id) as JSON; function-level auth."""
    category = req.route_params.get("category")
    product_id = req.route_params.get("id")
    payload = {"category": category, "id": int(product_id) if product_id else None}
    return func.HttpResponse(json.dumps(payload, separators=(",", ":")), mimetype="application/json")


@app.route(route="echo", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """Returns the request body byte for byte with the request's own Content-Type."""
    content_type = req.headers.get("Content-Type") or "application/octet-stream"
    # Passed as a header, not as mimetype: for text/* the library would append a second charset.
    return func.HttpResponse(req.get_body(), headers={"Content-Type": content_type})


@app.function_name(name="headers")
@app.route(route="headers", methods=["GET"])
def show_headers(req: func.HttpRequest) -> func.HttpResponse:
    """Reports two request headers as JSON and sets X-Sample; the Python name differs."""
    seen = {name: req.headers.get(name) for name in ("x-custom", "user-agent")}
    return func.HttpResponse(
        json.dumps(seen, separators=(",", ":")),
        mimetype="application/json",
        headers={"X-Sample": "v2"},
    )


@app.route(route="status/{code:int}", methods=["GET"])
async def status(req: func.HttpRequest) -> func.HttpResponse:
    """Answers with the status code from the route (async, to exercise that path)."""
    code = int(req.route_params["code"])
    body = "" if code in (204, 304) else f"status {code}"
    return func.HttpResponse(body, status_code=code)


@app.route(route="fail", methods=["GET"])
def fail(req: func.HttpRequest) -> func.HttpResponse:
    """Always raises, so the host must answer 500."""
    raise RuntimeError("fail: this function always raises")


@app.route(route="logs", methods=["GET"])
def logs(req: func.HttpRequest, context: func.Context) -> str:
    """Writes an information and a warning log line, then returns a plain string."""
    logging.info("logs: information from %s", context.function_name)
    logging.warning("logs: a warning from %s", context.function_name)
    return "logged"


@app.route(route="cookies", methods=["GET"])
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    """Sets two cookies through Set-Cookie headers (the worker sends them as cookies)."""
    resp = func.HttpResponse("cookies set", headers={"Set-Cookie": "session=abc123; Path=/; HttpOnly"})
    resp.headers.add("Set-Cookie", "theme=dark; Path=/; Max-Age=3600")
    return resp
