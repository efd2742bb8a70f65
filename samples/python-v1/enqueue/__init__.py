"""enqueue: writes the request body text to queue `jobs` as one message and answers 202."""

import azure.functions as func


def main(req: func.HttpRequest, msg: func.Out[str]) -> func.HttpResponse:
    msg.set(req.get_body().decode("utf-8", "replace"))
    return func.HttpResponse("queued", status_code=202, mimetype="text/plain")
