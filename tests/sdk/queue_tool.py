"""A small client of Stratus's queue service built on the official Azure Storage queue SDK:
`send PORT QUEUE TEXT [base64]` sends a message (base64-encoded by the SDK's own policy when
asked); `peek PORT QUEUE` prints the visible messages' texts as JSON."""

import json
import sys

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def client(port, queue, base64=False):
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={KEY};QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1"
    )
    policy = TextBase64EncodePolicy() if base64 else None
    return QueueClient.from_connection_string(conn, queue, message_encode_policy=policy)


def main(args):
    if args[0] == "send":
        q = client(args[1], args[2], base64=len(args) > 4 and args[4] == "base64")
        try:
            q.create_queue()
        except ResourceExistsError:
            pass
        q.send_message(args[3])
    elif args[0] == "peek":
        try:
            print(json.dumps([m.content for m in client(args[1], args[2]).peek_messages(max_messages=32)]))
        except ResourceNotFoundError:
            print("[]")


if __name__ == "__main__":
    main(sys.argv[1:])
