"""status: answers with the status code from the route (async, to exercise that path)."""

import azure.functions as func


async def main(req: func.HttpRequest) -> func.HttpResponse:
    code = int(req.route_params["code"])
    body = "" if code in (204, 304) else f"status {code}"
    return func.HttpResponse(body, status_code=code)
