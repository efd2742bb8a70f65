"""cookies: sets two cookies the v1 way, through Set-Cookie response headers."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse("cookies set", headers={"Set-Cookie": "session=abc123; Path=/; HttpOnly"})
    # The headers are a werkzeug Headers object, so a second Set-Cookie can be added.
    resp.headers.add("Set-Cookie", "theme=dark; Path=/; Max-Age=3600")
    return resp
