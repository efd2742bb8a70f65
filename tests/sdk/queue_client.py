"""Drives Stratus's queue service with the official Azure Storage queue SDK (a real client):
every operation the SDK offers for queues and messages, with the results Azure gives.
Usage: queue_client.py PORT; exits non-zero on the first difference."""

import sys

from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def conn(port, key=KEY):
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={key};QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1"
    )


def main(port):
    svc = QueueServiceClient.from_connection_string(conn(port))
    q = svc.get_queue_client("sdk-jobs")
    q.create_queue(metadata={"team": "a"})
    try:
        # Same metadata: the service answers 204, which the SDK reports as "already exists".
        q.create_queue(metadata={"team": "a"})
        raise AssertionError("re-creating a queue must say it exists")
    except ResourceExistsError:
        pass
    try:
        q.create_queue(metadata={"team": "b"})
        raise AssertionError("a queue re-created with other metadata must conflict")
    except ResourceExistsError as e:
        assert e.error_code == "QueueAlreadyExists", e.error_code
    assert q.get_queue_properties().metadata == {"team": "a"}

    sent = q.send_message("hello <world> & ünïcode")
    assert sent.id and sent.pop_receipt
    q.send_message("second", time_to_live=-1)
    assert [m.content for m in q.peek_messages(max_messages=5)] == ["hello <world> & ünïcode", "second"]

    got = list(q.receive_messages(messages_per_page=5, visibility_timeout=30))
    assert [(m.content, m.dequeue_count) for m in got] == [("hello <world> & ünïcode", 1), ("second", 1)], got
    assert list(q.peek_messages()) == [], "received messages are invisible"
    updated = q.update_message(got[0], visibility_timeout=0, content="changed")
    assert updated.pop_receipt and updated.pop_receipt != got[0].pop_receipt
    again = list(q.receive_messages(messages_per_page=5))
    assert [(m.content, m.dequeue_count) for m in again] == [("changed", 2)], again
    try:
        q.delete_message(got[0].id, got[0].pop_receipt)
        raise AssertionError("an old pop receipt must not delete the message")
    except Exception as e:  # the SDK raises HttpResponseError for 400 PopReceiptMismatch
        assert getattr(e, "error_code", None) == "PopReceiptMismatch", e
    q.delete_message(again[0])
    assert q.get_queue_properties().approximate_message_count == 1  # "second" is still invisible
    try:
        q.delete_message("00000000-0000-0000-0000-000000000000", "AgAAAA==")
        raise AssertionError("deleting a missing message must fail")
    except ResourceNotFoundError as e:
        assert e.error_code == "MessageNotFound", e.error_code

    names = [x.name for x in svc.list_queues(include_metadata=True)]
    assert "sdk-jobs" in names, names
    q.clear_messages()
    assert q.get_queue_properties().approximate_message_count == 0
    q.delete_queue()
    try:
        q.get_queue_properties()
        raise AssertionError("a deleted queue must be gone")
    except ResourceNotFoundError as e:
        assert e.error_code == "QueueNotFound", e.error_code

    wrong = QueueServiceClient.from_connection_string(conn(port, key="d3Jvbmcga2V5"))
    try:
        wrong.get_queue_client("sdk-jobs").create_queue()
        raise AssertionError("a wrong key must be refused")
    except ClientAuthenticationError as e:
        assert e.error_code == "AuthenticationFailed", e.error_code
    print("queue client: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
