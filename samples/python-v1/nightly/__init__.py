"""nightly: a 02:00 timer batch that fans three jobs out to queue `jobs` in one output list."""

import json
import logging
import typing
from datetime import datetime, timezone

import azure.functions as func


def main(timer: func.TimerRequest, msg: func.Out[typing.List[str]]) -> None:
    # The occurrence this run is for, when the host says; else the time now.
    batch = (timer.schedule_status or {}).get("Next") or datetime.now(timezone.utc).isoformat()
    # A list sets one queue message per element.
    msg.set([json.dumps({"job": i, "batch": batch}, separators=(",", ":")) for i in range(1, 4)])
    logging.info("fanned out 3 jobs")
