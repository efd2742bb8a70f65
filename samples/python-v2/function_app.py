"""The Python v2 sample app: HTTP, timer and queue functions declared with decorators on one FunctionApp."""

import json
import logging
import typing
from datetime import datetime, timezone

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


@app.timer_trigger(arg_name="timer", schedule="0 0 2 * * *", run_on_startup=False)
@app.queue_output(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
def nightly(timer: func.TimerRequest, msg: func.Out[typing.List[str]]) -> None:
    """A 02:00 batch that fans three jobs out to queue `jobs` in one output list."""
    # The occurrence this run is for, when the host says; else the time now.
    batch = (timer.schedule_status or {}).get("Next") or datetime.now(timezone.utc).isoformat()
    # A list sets one queue message per element.
    msg.set([json.dumps({"job": i, "batch": batch}, separators=(",", ":")) for i in range(1, 4)])
    logging.info("fanned out 3 jobs")


@app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="result", queue_name="results", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage, result: func.Out[str]) -> None:
    """The `jobs` worker: raises on poison or non-JSON messages, else reports to `results`."""
    text = msg.get_body().decode("utf-8")
    try:
        job = json.loads(text)
    except ValueError:
        job = None
    # Raising fails the invocation: the host retries the message, then moves it to
    # `jobs-poison` once it has been dequeued maxDequeueCount times.
    if not isinstance(job, dict):
        raise ValueError(f"work: the message is not a JSON object: {text!r}")
    if job.get("poison") is True:
        raise RuntimeError(f"work: a poison message (dequeue count {msg.dequeue_count})")
    result.set(json.dumps({"job": job.get("job"), "done": True, "by": "python-v2"}, separators=(",", ":")))
    logging.info("finished job %s", job.get("job"))


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, msg: func.Out[str]) -> func.HttpResponse:
    """Writes the request body text to queue `jobs` as one message and answers 202."""
    msg.set(req.get_body().decode("utf-8", "replace"))
    return func.HttpResponse("queued", status_code=202, mimetype="text/plain")
