"""Ends the worker process in the middle of an invocation."""
import os

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    os._exit(3)
