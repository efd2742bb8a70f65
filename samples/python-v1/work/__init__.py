"""work: the `jobs` queue worker; raises on poison or non-JSON messages, else reports to `results`."""

import json
import logging

import azure.functions as func


def main(msg: func.QueueMessage, result: func.Out[str]) -> None:
    text = msg.get_body().decode("utf-8")
    try:
        job = json.loads(text)
    except ValueError:
        job = None
    # Raising fails the invocation: the host retries the message, then moves it to
    # `jobs-poison` once it has been dequeued maxDequeueCount times.
    if not isinstance(job, dict):
        raise ValueError(f"work: the message is not a JSON object: {text!r}")
    if job.get("poison") is True:
        raise RuntimeError(f"work: a poison message (dequeue count {msg.dequeue_count})")
    result.set(json.dumps({"job": job.get("job"), "done": True, "by": "python-v1"}, separators=(",", ":")))
    logging.info("finished job %s", job.get("job"))
