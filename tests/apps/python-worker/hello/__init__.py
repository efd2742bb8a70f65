"""Answers with the worker's process id, so a test can tell a restarted worker apart."""
import os

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"pid {os.getpid()}")
