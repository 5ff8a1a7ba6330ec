"""Measure moto's SQS under the local stack's load shape, with and without the speed-up.

    python -m local.stack.moto_bench [--count 2000] [--consumers 4] [--no-patch] [--profile FILE]

Enqueues ``--count`` payment-sized messages with parallel SendMessageBatch calls, then drains
them with ``--consumers`` threads doing what the event-source-mapping emulator does
(ReceiveMessage of 10 with all attributes, DeleteMessageBatch). Prints the timings as JSON.
A figure, not a test: it never fails on time.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .aws import MotoServer, boto3_client


def run(count: int, consumers: int, patched: bool, profile: str | None = None) -> dict:
    with MotoServer(patched=patched, profile=profile) as moto:
        sqs = boto3_client("sqs", moto.endpoint, "us-east-1")
        dlq = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName="bench",
            Attributes={
                "VisibilityTimeout": "30",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
            },
        )["QueueUrl"]
        body = json.dumps({"paymentKey": "x" * 16, "properties": {"hs_initial_amount": "10.00", "note": "y" * 300}})
        batches = [
            [{"Id": str(j), "MessageBody": body.replace("x" * 16, f"p{i + j:015d}")} for j in range(min(10, count - i))]
            for i in range(0, count, 10)
        ]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda entries: sqs.send_message_batch(QueueUrl=url, Entries=entries), batches))
        enqueue = time.perf_counter() - t0

        received = 0
        lock = threading.Lock()
        stop = threading.Event()

        def consume() -> None:
            nonlocal received
            while not stop.is_set():
                msgs = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not msgs:
                    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                    if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
                        stop.set()
                    continue
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
                )
                with lock:
                    received += len(msgs)

        t1 = time.perf_counter()
        threads = [threading.Thread(target=consume) for _ in range(consumers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        drain = time.perf_counter() - t1
    return {
        "patched": patched,
        "count": count,
        "consumers": consumers,
        "enqueue_s": round(enqueue, 2),
        "drain_s": round(drain, 2),
        "received": received,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.stack.moto_bench")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--no-patch", action="store_true")
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.count, args.consumers, not args.no_patch, args.profile)))


if __name__ == "__main__":
    main()
