"""echo: returns the request body byte for byte with the request's own Content-Type."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    content_type = req.headers.get("Content-Type") or "application/octet-stream"
    # Passed as a header, not as mimetype: for text/* the library would append a second charset.
    return func.HttpResponse(req.get_body(), headers={"Content-Type": content_type})
