"""Runs past the app's functionTimeout."""
import time

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(30)
    return func.HttpResponse("too late")
