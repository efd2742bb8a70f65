"""report: a fixed JSON answer behind admin-level auth (master key only)."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse('{"report":"ok"}', mimetype="application/json")
