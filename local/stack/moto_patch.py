"""Stands in for Amazon SQS's speed and atomicity: a narrow, version-pinned fix of moto's SQS.

Applied by :mod:`local.stack.moto_launcher`.

The hot spot (found by profiling moto's server under a 2,000-message enqueue + drain, see
docs/local.md): ``moto.sqs.models.Queue.attributes``. Every access builds the full attribute
dict, and three of its entries (ApproximateNumberOfMessages, ...Delayed, ...NotVisible) each
scan every message of the queue, reading the clock twice per message through
``unix_time_millis()`` (two datetime constructions each). moto reads ``queue.attributes`` for
one static value on every message sent (``ContentBasedDeduplication`` in ``send_message``) and
three times for every message received (``is_message_valid_based_on_retention_period`` ->
``get_queue_attributes(["MessageRetentionPeriod"])``). In moto 5.2.1 that was 96 % of the
server's time: a 10-message SendMessageBatch took ~0.35 s per message at 2,000 queued messages
under the profiler.

The patch replaces that one property with one that computes the same dict with the three
counters taken in a single pass over the messages against a single clock reading (the same
comparisons as ``Message.visible`` / ``Message.delayed``). Everything else in the dict is
computed exactly as moto does. Nothing else in moto is touched.

A second problem showed up in the same profile runs: moto's server handles each request in its
own thread, and ``Queue.delete_message`` rebuilds the message list from a snapshot
(``self._messages = new_messages``), so two concurrent deletes resurrect one another's message
and a delete concurrent with a send drops the sent message; two concurrent receives can also
hand out the same message (the check of ``message.visible`` and ``mark_received`` are not
atomic; moto issue getmoto/moto#519). Measured with 4 consumers: 2,029-2,128 receives for 2,000
messages and a 30 s tail while resurrected messages sat out their visibility timeout. So the
patch also serialises the SQS backend's operations with one lock (:data:`SQS_LOCK`); a long
poll waits *outside* the lock (it re-runs moto's own receive with ``wait_seconds_timeout=0``
under the lock, and waits on moto's own queue condition in between), so a waiting poller
never blocks the others.

DynamoDB is not served by moto in the local stack: AWS's own DynamoDB Local is
(:mod:`local.stack.dynamodb_local`), so nothing of moto's DynamoDB is patched.

It is pinned: :func:`apply` patches only if the installed moto is :data:`MOTO_VERSION` and the
source of every function whose behaviour the patch reproduces still hashes to what it was
written against (:data:`PINNED_SOURCES`); otherwise it leaves moto alone and says so on stderr
(the stack is then slow but still correct). tests/esm/test_moto_patch.py fails in that case,
so that a moto upgrade forces a review of the patch.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import textwrap
import threading
import time
from typing import Any, Callable

MOTO_VERSION = "5.2.1"

# sha256 of inspect.getsource(...) (dedented) of what the patch replaces or reproduces.
PINNED_SOURCES: dict[str, str] = {
    "moto.sqs.models.Queue.attributes": ("ddf03540564891aa86180cfebb4a8b4eca6fbb0ba4a8f09c5ffdada0038ff8a0"),
    "moto.sqs.models.Queue.approximate_number_of_messages": (
        "58ad3ae419355f73f13c716a8329bede6a4fe9f7aebb03f07b8e108ce140121b"
    ),
    "moto.sqs.models.Queue.approximate_number_of_messages_delayed": (
        "e69b37fb977867ed12504a7986c63e27b14962778677b357cefa8b7c49b764e3"
    ),
    "moto.sqs.models.Queue.approximate_number_of_messages_not_visible": (
        "e411bdffb39107eed0fe09295315434e1e621201ebe44636d694423734f4d57b"
    ),
    "moto.sqs.models.Queue.messages": ("67cdc0178b71ab4cd5a2187379cdac934c0439d55d90c59882c36aebd40b14aa"),
    "moto.sqs.models.Message.visible": ("1abcc7861b9a4c5b0c3be942fe350954284299399d4b2f6db6161b685cfc74d9"),
    "moto.sqs.models.Message.delayed": ("815515980283b0b02234403fceaaa7381e8ddbb3cfa7f2b29a7c8ac3c53ff2eb"),
}

# The SQSBackend operations run under SQS_LOCK. receive_message's long-poll loop and the queue
# condition it waits on are reproduced outside the lock, so their sources are pinned too.
SERIALISED = (
    "create_queue",
    "delete_queue",
    "get_queue_attributes",
    "set_queue_attributes",
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
)
PINNED_SOURCES.update(
    {
        "moto.sqs.models.SQSBackend.receive_message": "79cac41881a077fd1837ee15783296df9545361d05925dc9b5f71c2134d26730",
        "moto.sqs.models.Queue.wait_for_messages": "c055a098ee139d2ff71353b6c4c0947df7dc6990fe00e7d9b41cb9e43e87f287",
        "moto.sqs.models.Queue.delete_message": "9c3d8164626a09868c0cb3bec31169f5fed7116aa1ef5998bd49bf27b8de03b2",
        "moto.sqs.models.Queue.add_message": "2ea74b872868bc9788fb86b500c6c6688d73ad7df870936b8cb3f39167ffda1e",
    }
)
PINNED_SOURCES.update(
    {
        "moto.sqs.models.SQSBackend.create_queue": "ea3b87d7849ea2111552108f4699d0649f3cab69c643f6b8592082b0e0b0784f",
        "moto.sqs.models.SQSBackend.delete_queue": "b4f065534f2ad32f2fce30010b9412cc9f74dde8725b178a6771eb60f7a3321a",
        "moto.sqs.models.SQSBackend.get_queue_attributes": "727161e889b12278a21745a1ede407a15d6f302bbd2bbb1a916503353c438e24",
        "moto.sqs.models.SQSBackend.set_queue_attributes": "94934a72a70693f869fc90d68b8012b9bc4c8727f9c6714860c8807fdd8d9bc3",
        "moto.sqs.models.SQSBackend.send_message": "fd7abfe52e85d6434a4c8ab0398c27889a0627e7c423a10c31fac9bca68e3f5b",
        "moto.sqs.models.SQSBackend.send_message_batch": "51071846bd5827112cae6597ea4254c9a05ad289d0732fdbcd932b508aac7f3e",
        "moto.sqs.models.SQSBackend.delete_message": "1e18e68ea2139bf0d27ba785c7da30306182eaf6ec0fe7d6c5ecb43d831b74e1",
        "moto.sqs.models.SQSBackend.delete_message_batch": "6bf1a92dd5520d6a8746c4babdd448b38fc85e92ab68bafed99cc75e4bf48b51",
        "moto.sqs.models.SQSBackend.change_message_visibility": "9c89525e42fd0d37a036c00c21b1a5441d11da541e4902f48ad1ceb5d7b0e915",
        "moto.sqs.models.SQSBackend.change_message_visibility_batch": "c03e047956f24bcbf6861fdc28d77d22fde468058fdb1b159e3088aa3440f6d8",
        "moto.sqs.models.SQSBackend.purge_queue": "b3989bc918fc0dee11e4875614beab83e9c4ebadf11aae4b79902b5c2f8f71b8",
    }
)

# Request routing: DomainDispatcherApplication.get_backend_for_host tests
# `host in backends.list_of_moto_modules()` on every request, under the dispatcher's lock, and
# that generator lists moto's package directory and stats ~180 entries each time (~5-10 ms per
# request, serialised). The directory does not change while the server runs: list it once.
PINNED_SOURCES.update(
    {
        "moto.backends.list_of_moto_modules": "4f741a10b06500e840c3aaa1b4f02706e6f2bfbababc0e8a2a7b9c9d0e8957dc",
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host": "105a0141fcfd0a6d69b7901f74d8cfdd246fe616a06e4047f7f1c41ecdd325d5",
    }
)

SQS_LOCK = threading.RLock()

_ORIGINAL_ATTRIBUTES: Any = None
_ORIGINAL_BACKEND: dict[str, Callable] = {}
_APPLIED = False


def installed_moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def _target(dotted: str) -> Callable:
    from moto.sqs import models

    parts = dotted.split(".")
    cls_name, attr = (parts[3], parts[4]) if len(parts) == 5 and parts[1] == "sqs" else ("", "")
    if dotted == "moto.backends.list_of_moto_modules":
        import moto.backends

        return _ORIGINAL_MODULE_LIST or moto.backends.list_of_moto_modules
    if dotted == "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host":
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        return DomainDispatcherApplication.get_backend_for_host
    if cls_name == "SQSBackend" and attr in _ORIGINAL_BACKEND:
        return _ORIGINAL_BACKEND[attr]
    member = getattr(models, cls_name).__dict__[attr]
    if isinstance(member, property):
        if member is _PATCHED_PROPERTY and _ORIGINAL_ATTRIBUTES is not None:
            return _ORIGINAL_ATTRIBUTES.fget
        if member is _PATCHED_MESSAGES and _ORIGINAL_MESSAGES is not None:
            return _ORIGINAL_MESSAGES.fget
        return member.fget
    return member


def source_hash(dotted: str) -> str:
    return hashlib.sha256(textwrap.dedent(inspect.getsource(_target(dotted))).encode()).hexdigest()


def stale_reasons() -> list[str]:
    """Why the patch does not fit the installed moto (empty when it fits)."""
    reasons = []
    installed = installed_moto_version()
    if installed != MOTO_VERSION:
        reasons.append(f"moto {installed} is installed, the patch was written for moto {MOTO_VERSION}")
    for dotted, expected in PINNED_SOURCES.items():
        try:
            actual = source_hash(dotted)
        except (AttributeError, KeyError, OSError, TypeError, ValueError) as exc:
            reasons.append(f"{dotted}: cannot read its source ({exc})")
            continue
        if actual != expected:
            reasons.append(f"{dotted} changed (sha256 {actual[:12]}..., pinned {expected[:12]}...)")
    return reasons


def _fast_attributes(self) -> dict[str, Any]:  # the replacement for Queue.attributes' getter
    from moto.sqs.models import unix_time_millis

    now = unix_time_millis()
    visible = delayed = not_visible = 0
    for message in self._messages:
        is_visible = now > message.visible_at  # Message.visible
        is_delayed = now < message.delayed_until  # Message.delayed
        if is_delayed:
            delayed += 1
        if not is_visible:
            not_visible += 1
        elif not is_delayed:
            visible += 1  # Queue.messages: visible and not delayed
    counts = {
        "ApproximateNumberOfMessages": visible,
        "ApproximateNumberOfMessagesDelayed": delayed,
        "ApproximateNumberOfMessagesNotVisible": not_visible,
    }

    result: dict[str, Any] = {}
    for attribute in self.BASE_ATTRIBUTES:
        if attribute in counts:
            result[attribute] = counts[attribute]
        else:
            result[attribute] = getattr(self, _snake(attribute))

    if self.fifo_queue:
        for attribute in self.FIFO_ATTRIBUTES:
            result[attribute] = getattr(self, _snake(attribute))

    if self.kms_master_key_id:
        for attribute in self.KMS_ATTRIBUTES:
            result[attribute] = getattr(self, _snake(attribute))

    if self.policy:
        result["Policy"] = self.policy

    if self.redrive_policy:
        import json

        result["RedrivePolicy"] = json.dumps(self.redrive_policy)

    for key in result:
        if isinstance(result[key], bool):
            result[key] = str(result[key]).lower()

    return result


_SNAKE: dict[str, str] = {}


def _snake(name: str) -> str:
    try:
        return _SNAKE[name]
    except KeyError:
        from moto.core.utils import camelcase_to_underscores

        _SNAKE[name] = value = camelcase_to_underscores(name)
        return value


_PATCHED_PROPERTY = property(_fast_attributes)


def _fast_messages(self) -> list:  # the replacement for Queue.messages' getter
    from moto.sqs.models import unix_time_millis

    now = unix_time_millis()
    # Message.visible and not Message.delayed, against one clock reading.
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


_PATCHED_MESSAGES = property(_fast_messages)
_ORIGINAL_MESSAGES: Any = None
_ORIGINAL_MODULE_LIST: Any = None


def _cached_module_list(original: Callable) -> Callable:
    cache: list[str] = []

    def list_of_moto_modules():  # a generator in moto; callers only test membership / iterate
        if not cache:
            cache.extend(original())
        yield from cache

    list_of_moto_modules.__wrapped__ = original  # type: ignore[attr-defined]
    return list_of_moto_modules


def _serialised(original: Callable) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with SQS_LOCK:
            return original(*args, **kwargs)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    wrapper.__name__ = original.__name__
    wrapper.__doc__ = original.__doc__
    return wrapper


def _make_receive(original: Callable) -> Callable:
    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list:
        # moto's loop: one pass over the visible messages; if nothing and a wait was asked,
        # queue.wait_for_messages(1) and try again until the wait is over. Same here, with the
        # pass under the lock and the wait outside it.
        polling_end = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with SQS_LOCK:
                result = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = polling_end - time.monotonic()
            if result or not wait_seconds_timeout or remaining <= 0:
                return result
            queue = self.get_queue(queue_name)
            started = time.monotonic()
            queue.wait_for_messages(min(1.0, remaining))
            if time.monotonic() - started < 0.01:
                # Visible messages exist but none could be delivered (FIFO groups in flight):
                # moto would spin here; pause briefly instead.
                time.sleep(0.05)

    receive_message.__wrapped__ = original  # type: ignore[attr-defined]
    return receive_message


def apply(*, force: bool = False) -> bool:
    """Apply the patch if the pins hold (or ``force``). Returns whether it is applied."""
    global _ORIGINAL_ATTRIBUTES, _ORIGINAL_MESSAGES, _ORIGINAL_MODULE_LIST, _APPLIED
    if _APPLIED:
        return True
    reasons = stale_reasons()
    if reasons and not force:
        print(
            "local.stack.moto_patch: NOT applied, moto stays unpatched (SQS slow): " + "; ".join(reasons),
            file=sys.stderr,
            flush=True,
        )
        return False
    import moto.backends
    from moto.sqs.models import Queue, SQSBackend

    _ORIGINAL_ATTRIBUTES = Queue.__dict__["attributes"]
    Queue.attributes = _PATCHED_PROPERTY  # type: ignore[method-assign, assignment]
    _ORIGINAL_MESSAGES = Queue.__dict__["messages"]
    Queue.messages = _PATCHED_MESSAGES  # type: ignore[method-assign, assignment]
    _ORIGINAL_MODULE_LIST = moto.backends.list_of_moto_modules
    moto.backends.list_of_moto_modules = _cached_module_list(_ORIGINAL_MODULE_LIST)
    for name in SERIALISED + ("receive_message",):
        _ORIGINAL_BACKEND[name] = SQSBackend.__dict__[name]
    for name in SERIALISED:
        setattr(SQSBackend, name, _serialised(_ORIGINAL_BACKEND[name]))
    SQSBackend.receive_message = _make_receive(_ORIGINAL_BACKEND["receive_message"])  # type: ignore[method-assign]
    _APPLIED = True
    return True


def revert() -> None:
    """Undo :func:`apply` (for tests comparing both behaviours in one process)."""
    global _APPLIED
    if not _APPLIED:
        return
    import moto.backends
    from moto.sqs.models import Queue, SQSBackend

    Queue.attributes = _ORIGINAL_ATTRIBUTES  # type: ignore[method-assign]
    Queue.messages = _ORIGINAL_MESSAGES  # type: ignore[method-assign]
    moto.backends.list_of_moto_modules = _ORIGINAL_MODULE_LIST
    for name, original in _ORIGINAL_BACKEND.items():
        setattr(SQSBackend, name, original)
    _ORIGINAL_BACKEND.clear()
    _APPLIED = False


def original_attributes(queue: Any) -> dict[str, Any]:
    """moto's own ``Queue.attributes`` for ``queue``, patched or not."""
    from moto.sqs.models import Queue

    prop = _ORIGINAL_ATTRIBUTES if _APPLIED else Queue.__dict__["attributes"]
    return prop.fget(queue)


if __name__ == "__main__":  # print the current hashes, to re-pin after reviewing an upgrade
    for name in PINNED_SOURCES:
        print(f'    "{name}": "{source_hash(name)}",')
