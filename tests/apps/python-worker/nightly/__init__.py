"""A nightly timer that runs at start-up too: logs what its TimerRequest says."""
import logging

import azure.functions as func


def main(mytimer: func.TimerRequest) -> None:
    logging.info("nightly ran, past_due=%s", mytimer.past_due)
