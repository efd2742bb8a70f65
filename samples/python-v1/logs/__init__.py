"""logs: writes an information and a warning log line, then returns a plain string."""

import logging

import azure.functions as func


def main(req: func.HttpRequest, context: func.Context) -> str:
    logging.info("logs: information from %s", context.function_name)
    logging.warning("logs: a warning from %s", context.function_name)
    return "logged"
