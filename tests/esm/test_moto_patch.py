"""The moto speed-up (local/stack/moto_patch.py): still pinned to the installed moto, still correct.

If a moto upgrade makes the first test fail: read the new moto source of each function listed,
check the patch still reproduces it (or adapt it), then re-pin with
``python -m local.stack.moto_patch`` (prints the new hashes) and MOTO_VERSION.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from local.stack import moto_patch
from local.stack.aws import boto3_client, queue_counts


def test_patch_is_pinned_to_the_installed_moto():
    assert moto_patch.installed_moto_version() == moto_patch.MOTO_VERSION
    assert moto_patch.stale_reasons() == []


def test_stale_patch_is_not_applied(monkeypatch, capsys):
    monkeypatch.setattr(moto_patch, "MOTO_VERSION", "0.0.0")
    monkeypatch.setattr(moto_patch, "_APPLIED", False)
    assert moto_patch.apply() is False
    assert "NOT applied" in capsys.readouterr().err


@pytest.fixture
def patched():
    assert moto_patch.apply()
    yield
    moto_patch.revert()


def _queue_with_messages_in_every_state():
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Message, Queue

    queue = Queue("patchtest", "us-east-1", "123456789012", VisibilityTimeout="30")
    now = unix_time_millis()
    for i in range(40):
        m = Message(f"id{i}", f"body{i}")
        m.mark_sent()
        if i % 4 == 1:
            m.visible_at = now + 60_000  # in flight
        elif i % 4 == 2:
            m.delayed_until = now + 60_000  # delayed
        elif i % 4 == 3:
            m.visible_at = now + 60_000
            m.delayed_until = now + 60_000  # both
        queue._messages.append(m)
    return queue


def test_patched_attributes_equal_moto_own(patched):
    from moto.sqs.models import Queue

    q = _queue_with_messages_in_every_state()
    fast = q.attributes
    original = moto_patch.original_attributes(q)
    assert fast == original
    assert (
        fast["ApproximateNumberOfMessages"],
        fast["ApproximateNumberOfMessagesNotVisible"],
        fast["ApproximateNumberOfMessagesDelayed"],
    ) == (10, 20, 20)
    assert [m.id for m in q.messages] == [m.id for m in moto_patch._ORIGINAL_MESSAGES.fget(q)]
    assert Queue.__dict__["messages"].fget is moto_patch._fast_messages
    moto_patch.revert()
    assert [m.id for m in q.messages] == [f"id{i}" for i in range(0, 40, 4)]
    assert q.attributes == fast
    moto_patch.apply()


def test_patched_attributes_equal_moto_own_for_fifo_and_policies(patched):
    import json

    from moto.sqs.models import Queue

    q = Queue(
        "p.fifo",
        "us-east-1",
        "123456789012",
        FifoQueue="true",
        ContentBasedDeduplication="true",
        RedrivePolicy=None,
        KmsMasterKeyId="alias/x",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}),
    )
    assert q.attributes == moto_patch.original_attributes(q)


def test_queue_counts_stay_right_through_the_launcher(moto_server):
    sqs = boto3_client("sqs", moto_server.endpoint, "us-east-1")
    url = sqs.create_queue(QueueName="patch-counts", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]

    def counts():
        c = queue_counts(sqs, url)
        return c["visible"], c["in_flight"], c["delayed"]

    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert counts() == (10, 0, 1)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=4)["Messages"]
    assert counts() == (6, 4, 1)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    assert counts() == (6, 3, 1)
    time.sleep(2.2)
    assert counts() == (9, 0, 1)  # the three undeleted ones are visible again


def test_concurrent_consumers_get_each_message_once(moto_server):
    """The serialisation half of the patch: no duplicate deliveries, no resurrected deletes."""
    sqs = boto3_client("sqs", moto_server.endpoint, "us-east-1", max_pool_connections=20)
    url = sqs.create_queue(QueueName="patch-race", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: sqs.send_message_batch(
                    QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"{i}-{j}"} for j in range(10)]
                ),
                range(60),
            )
        )
    seen: list[str] = []
    lock = threading.Lock()

    def consume():
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not msgs:
                return
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
            )
            with lock:
                seen.extend(m["Body"] for m in msgs)

    threads = [threading.Thread(target=consume) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 600 and len(set(seen)) == 600
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0" and a["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_long_poll_still_waits_and_wakes_on_send(moto_server):
    sqs = boto3_client("sqs", moto_server.endpoint, "us-east-1")
    url = sqs.create_queue(QueueName="patch-longpoll")["QueueUrl"]
    t0 = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages") is None
    assert 1.8 <= time.monotonic() - t0 < 4
    threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=url, MessageBody="hi")).start()
    t0 = time.monotonic()
    [m] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert m["Body"] == "hi" and time.monotonic() - t0 < 3


def test_module_list_cache_answers_like_moto(patched):
    import moto.backends

    original = moto.backends.list_of_moto_modules.__wrapped__
    assert list(moto.backends.list_of_moto_modules()) == list(original())
    assert "sqs" in moto.backends.list_of_moto_modules()
