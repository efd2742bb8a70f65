"""fail: always raises, so the host must answer 500."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("fail: this function always raises")
