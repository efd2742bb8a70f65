"""hello: greets the `name` from the query string or a JSON body, else the world."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name")
    if not name:
        try:
            body = req.get_json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            name = body.get("name")
    return func.HttpResponse(f"Hello, {name or 'world'}!", mimetype="text/plain")
