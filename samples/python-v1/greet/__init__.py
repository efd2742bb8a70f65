"""greet: answers through an http output binding named `res` (func.Out), not `$return`."""

import azure.functions as func


def main(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    try:
        body = req.get_json()
    except ValueError:
        body = None
    name = body.get("name") if isinstance(body, dict) else None
    res.set(func.HttpResponse(f"Welcome, {name or 'guest'}!", status_code=201))
