"""Pure core, steps 2, 4 and 7: plan chunks, settle a HubSpot answer, build the batch response.

No I/O here: the orchestration (``drain``) feeds answers in and acts on the verdicts.
Results are matched to inputs by ``objectWriteTraceId`` (HubSpot returns them in no
guaranteed order), never by position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from payments_drain.core.outcomes import Message, Outcome, Payment, Reason, State, Wait

MAX_INPUTS = 100
EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)", re.IGNORECASE)
UNKNOWN_OBJECT_TYPE = "Unable to infer object type from"  # HubSpot's 400 for a path with an unknown type
UNIQUE_PROPERTY_MISSING = "UNIQUE_PROPERTY_MISSING"  # HubSpot: our unique property does not exist


def plan_chunks(payments: Sequence[Payment], size: int = MAX_INPUTS) -> list[list[Payment]]:
    """Calls of at most ``size`` inputs. Trace ids are message ids: unique within any call."""
    return [list(payments[i : i + size]) for i in range(0, len(payments), size)]


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for one batch/create call. ``status`` is None when no HTTP answer came:
    ``error`` then says whether the request surely never left ("connect") or may have been
    stored ("timeout", "protocol")."""

    status: int | None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    latency_ms: float = 0.0

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


# What the orchestration does next with a chunk.
SETTLED = "settled"  # outcomes are final for this invocation
SPLIT = "split"  # whole-request 400: halve the chunk and send each half
REFRESH = "refresh"  # 401: read the token again, past the cache, and resend once
TRANSIENT = "transient"  # may succeed if resent after ``wait_s``
STOP = "stop"  # the daily limit is spent: send nothing more in this invocation


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    reason: Reason | None = None
    wait_s: float = 0.0
    ambiguous: bool = False  # HubSpot may have stored the payments although we know no outcome
    # SETTLED for the inputs in ``outcomes`` only: the others were not written and go again at once
    # (a whole-request 400 that names the inputs it refuses).
    resend_rest: bool = False


def settle(chunk: Sequence[Payment], answer: Answer, unique_property: str | None = None) -> Verdict:
    """Decide what one HubSpot answer means for each payment of the chunk."""
    status = answer.status
    if status is None:
        # "connect" and "client": the request never left (refused, or stopped by the HTTP client
        # before sending); anything else may have reached HubSpot.
        ambiguous = answer.error not in ("connect", "client")
        reason = Reason("HUBSPOT_UNREACHABLE", f"no answer from HubSpot ({answer.error})")
        return Verdict(TRANSIENT, reason=reason, wait_s=0.5, ambiguous=ambiguous)
    if 200 <= status < 300:
        # Settled by the body, not only the status (docs/hubspot.md): a 2xx that lists or counts
        # errors is a multi-status answer (the 2026-09 create declares only 201, errors included);
        # any other 2xx means every input was stored, even when its results cannot be read.
        if not _readable(answer.body):
            return _unreadable(chunk, answer, unique_property)
        if status == 207 or _listed_errors(answer.body) or _declared_errors(answer.body):
            return _multi_status(chunk, answer, unique_property)
        return Verdict(SETTLED, _created(chunk, answer.body))
    reason = whole_request_reason(answer)
    if status == 400 and (missing := _unique_property_missing(answer.body, unique_property, reason)):
        # Every input carries the property: halving would find them all "bad". Held, not reported.
        return Verdict(SETTLED, {p.message_id: missing for p in chunk}, missing.reason)
    if is_unknown_object_type(status, reason):
        # The path names an object type HubSpot does not know: the configuration's fault, never the
        # inputs'. Splitting would only resend them all; keep them on the queue for a person to fix.
        return Verdict(SETTLED, {p.message_id: Outcome(State.RETRY, reason) for p in chunk}, reason)
    if status == 400 and (refused := _refused_inputs(chunk, answer, reason)):
        # An input that breaks a rule (from 2026-09 also the account's own rules) named by trace
        # id: it is rejected with HubSpot's message and the others go again without it.
        return Verdict(SETTLED, refused, reason, resend_rest=len(refused) < len(chunk))
    if status in (400, 409, 413) and len(chunk) > 1:
        return Verdict(SPLIT, reason=reason)
    if status == 400:
        return Verdict(SETTLED, {p.message_id: Outcome(State.REJECTED, reason) for p in chunk}, reason)
    if status == 409:
        return Verdict(
            SETTLED, {p.message_id: _conflict(reason, answer.body, unique_property) for p in chunk}, reason
        )
    if status == 401:
        return Verdict(REFRESH, reason=reason)
    if status == 429:
        body = answer.body if isinstance(answer.body, dict) else {}
        if str(body.get("policyName", "")).upper() == "DAILY":
            return Verdict(STOP, reason=reason)
        return Verdict(TRANSIENT, reason=reason, wait_s=throttled_s(answer))
    if status == 423:
        return Verdict(TRANSIENT, reason=reason, wait_s=max(2.0, _retry_after(answer, default=2.0)))
    if status == 477:
        return Verdict(TRANSIENT, reason=reason, wait_s=_retry_after(answer, default=2.0))
    if status >= 500:
        return Verdict(TRANSIENT, reason=reason, wait_s=_retry_after(answer, default=0.5), ambiguous=True)
    # 403 (missing scope), 404 (wrong base URL or path) and anything unexpected: a configuration
    # fault, not the payments' fault. Keep them on the queue; the alarm tells a person.
    return Verdict(SETTLED, {p.message_id: Outcome(State.RETRY, reason) for p in chunk}, reason)


def is_unknown_object_type(status: int | None, reason: Reason | None) -> bool:
    """HubSpot's 400 for a path naming an object type it does not know: the configuration's fault."""
    return status == 400 and reason is not None and reason.message.startswith(UNKNOWN_OBJECT_TYPE)


def whole_request_reason(answer: Answer) -> Reason:
    body = answer.body if isinstance(answer.body, dict) else {}
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    code = next((e.get("code") for e in errors if isinstance(e, dict) and e.get("code")), None)
    category = body.get("category") or body.get("errorType") or f"HTTP_{answer.status}"
    message = (
        body.get("message") if isinstance(body.get("message"), str) else f"HubSpot answered {answer.status}"
    )
    correlation = body.get("correlationId") or answer.header("X-HubSpot-Correlation-Id")
    return Reason(str(category), message[:1000], answer.status, code, correlation)


def _refused_inputs(chunk: Sequence[Payment], answer: Answer, whole: Reason) -> dict[str, Outcome]:
    """The inputs a whole-request 400 names through ``context.objectWriteTraceId`` (in its own
    context or in one of its ``errors[]``), each rejected with the message that names it."""
    body = answer.body if isinstance(answer.body, dict) else {}
    ids = {p.message_id for p in chunk}
    refused: dict[str, Outcome] = {}
    for item in [body, *_listed_errors(body)]:
        if not isinstance(item, dict):
            continue
        context = item.get("context")
        named = context.get("objectWriteTraceId") if isinstance(context, dict) else None
        for trace_id in named if isinstance(named, list) else []:
            if trace_id in ids and trace_id not in refused:
                message = item.get("message") if isinstance(item.get("message"), str) else whole.message
                code = item.get("code") if isinstance(item.get("code"), str) else whole.code
                reason = Reason(
                    whole.category, message[:1000], answer.status, code, whole.hubspot_correlation_id
                )
                refused[trace_id] = Outcome(State.REJECTED, reason)
    return refused


UNREADABLE = "HUBSPOT_UNREADABLE_ANSWER"


def _readable(body: Any) -> bool:
    """Whether a 2xx body has the documented shape wherever settling reads it."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return False
    if "errors" in body and not isinstance(body["errors"], list):
        return False
    for item in (*body["results"], *body.get("errors", ())):
        if not isinstance(item, dict):
            return False
        trace_id = item.get("objectWriteTraceId")
        if trace_id is not None and not isinstance(trace_id, str):
            return False
    return True


def _unreadable(chunk: Sequence[Payment], answer: Answer, unique_property: str | None) -> Verdict:
    """A 2xx whose body cannot be read: something was stored, and we cannot tell what. With a
    unique property a resend is safe (HubSpot refuses or updates what it holds) and tells: send
    again. Without one, a resend could create copies: a 2xx is taken at its documented word (every
    input stored), unless it is a 207 or counts errors: then they are maybe stored, retried with
    the ledger's mark."""
    reason = Reason(
        UNREADABLE, f"HubSpot answered {answer.status} with a body that cannot be read", answer.status
    )
    if unique_property:
        return Verdict(TRANSIENT, reason=reason, wait_s=0.5, ambiguous=True)
    if answer.status != 207 and not _declared_errors(answer.body):
        return Verdict(SETTLED, {p.message_id: Outcome(State.CREATED, reason) for p in chunk}, reason)
    return Verdict(
        SETTLED, {p.message_id: Outcome(State.RETRY, reason) for p in chunk}, reason, ambiguous=True
    )


def _multi_status(chunk: Sequence[Payment], answer: Answer, unique_property: str | None) -> Verdict:
    body = answer.body
    ids = {p.message_id for p in chunk}
    outcomes: dict[str, Outcome] = {}
    unmapped = 0
    correlation = answer.header("X-HubSpot-Correlation-Id")
    for error in _listed_errors(body):
        trace_id = _trace_id_of(error)
        if trace_id not in ids:
            unmapped += 1
            continue
        outcomes[trace_id] = _input_error(error, answer.status, correlation, unique_property)
    # Inputs with no error were created, unless an error could not be mapped to its input or
    # more errors are counted than listed: then only the results themselves prove creation.
    proven_only = unmapped > 0 or _declared_errors(body) > len(outcomes)
    outcomes.update(_created([p for p in chunk if p.message_id not in outcomes], body, proven_only))
    return Verdict(SETTLED, outcomes, ambiguous=proven_only)


def _listed_errors(body: Any) -> list[Any]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) else []


def _declared_errors(body: Any) -> int:
    count = body.get("numErrors") if isinstance(body, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def results_shape(answer: Answer) -> str | None:
    """What about a 2xx batch answer's ``results`` and ``errors`` lists differs from the documented
    shape (records and links alike); None when nothing does, or when it is not a 2xx."""
    status, body = answer.status, answer.body
    if status is None or not 200 <= status < 300:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return "results cannot be read"
    if "errors" in body and not isinstance(body["errors"], list):
        return "errors cannot be read"
    return None


def unexpected_shape(answer: Answer) -> str | None:
    """What about a 2xx answer differs from the documented shape (docs/hubspot.md), for a log
    line with its correlation id; None when nothing does, or when it is not a 2xx."""
    status, body = answer.status, answer.body
    if (shape := results_shape(answer)) is not None or status is None or not 200 <= status < 300:
        return shape
    if _declared_errors(body) > len(body.get("errors") or []):
        return "numErrors counts errors that are not listed"
    if any(_trace_id_of(error) is None for error in _listed_errors(body)):
        return "an error names no input"
    if status not in (200, 201, 207):
        return f"status {status}"
    return None


def _trace_id_of(error: Any) -> str | None:
    if not isinstance(error, dict):
        return None
    context = error.get("context")
    trace_ids = context.get("objectWriteTraceId") if isinstance(context, dict) else None
    if isinstance(trace_ids, list) and trace_ids and isinstance(trace_ids[0], str):
        return trace_ids[0]
    return None


def _input_error(
    error: dict[str, Any], status: int | None, correlation: str | None, unique_property: str | None
) -> Outcome:
    details = error.get("errors") if isinstance(error.get("errors"), list) else []
    code = next((d.get("code") for d in details if isinstance(d, dict) and d.get("code")), None)
    category = str(error.get("category") or "UNKNOWN")
    message = str(error.get("message") or category)[:1000]
    reason = Reason(category, message, status, code, correlation)
    if category == "VALIDATION_ERROR":
        return _unique_property_missing(error, unique_property, reason) or Outcome(State.REJECTED, reason)
    if category in ("CONFLICT", "OBJECT_ALREADY_EXISTS") or EXISTING_ID.search(message):
        return _conflict(reason, error, unique_property)
    return Outcome(State.RETRY, reason)


def _unique_property_missing(error: Any, unique_property: str | None, reason: Reason) -> Outcome | None:
    """HubSpot says the unique property the drain writes every paymentKey into does not exist
    (``PROPERTY_DOESNT_EXIST`` naming it: docs/hubspot.md): the deployment's fault, since
    ``make setup-hubspot`` was not run or ``HubSpotUniqueProperty`` names another property, never
    the payment's. Each payment is retried and held until a person fixes it (the alarm says how);
    written without the property, it would lose HubSpot's refusal of a second create."""
    if not unique_property or not isinstance(error, dict) or not isinstance(error.get("errors"), list):
        return None
    for detail in error["errors"]:
        if not isinstance(detail, dict) or detail.get("code") != "PROPERTY_DOESNT_EXIST":
            continue
        context = detail.get("context") if isinstance(detail.get("context"), dict) else {}
        names = context.get("propertyName") if isinstance(context.get("propertyName"), list) else []
        if unique_property in (detail.get("in"), *names):
            text = (
                f"HubSpot says the unique property {unique_property} does not exist: run make setup-hubspot "
                f"with this account's token (docs/deploy.md), or deploy with HubSpotUniqueProperty set to "
                f"the property that holds the paymentKey"
            )
            held = Reason(
                UNIQUE_PROPERTY_MISSING,
                text,
                reason.http_status,
                detail["code"],
                reason.hubspot_correlation_id,
            )
            return Outcome(State.RETRY, held, wait=Wait.CONFIGURATION)
    return None


def _conflict(reason: Reason, body: Any, unique_property: str | None) -> Outcome:
    """A unique value exists already. Ours (the paymentKey's property): it is the same payment,
    created before, so a duplicate. Any other unique property: it can never succeed."""
    if not unique_property:
        return Outcome(State.REJECTED, reason)
    existing = None
    context = body.get("context") if isinstance(body, dict) else None
    if isinstance(context, dict) and isinstance(context.get("existingId"), list) and context["existingId"]:
        existing = str(context["existingId"][0])
    if existing is None and (match := EXISTING_ID.search(reason.message)):
        existing = match.group(1)
    return Outcome(State.DUPLICATE, reason, existing)


def _created(payments: Iterable[Payment], body: Any, proven_only: bool = False) -> dict[str, Outcome]:
    """Created outcomes with HubSpot ids, by trace id if echoed, else by the properties sent."""
    payments = list(payments)
    results = body.get("results") if isinstance(body, dict) and isinstance(body.get("results"), list) else []
    by_trace = {
        r.get("objectWriteTraceId"): r for r in results if isinstance(r, dict) and r.get("objectWriteTraceId")
    }
    unclaimed = [r for r in results if isinstance(r, dict) and not r.get("objectWriteTraceId")]
    outcomes: dict[str, Outcome] = {}
    for payment in payments:
        result = by_trace.get(payment.message_id) or _take_matching(unclaimed, payment.properties)
        if result is None and proven_only:
            reason = Reason("HUBSPOT_AMBIGUOUS", "an input is neither among the results nor the errors")
            outcomes[payment.message_id] = Outcome(State.RETRY, reason)
            continue
        hubspot_id = str(result["id"]) if result and result.get("id") is not None else None
        updated = bool(result) and result.get("new") is False  # batch/upsert: it existed, this updated it
        outcomes[payment.message_id] = Outcome(State.CREATED, hubspot_id=hubspot_id, updated=updated)
    return outcomes


def _take_matching(results: list[dict[str, Any]], properties: dict[str, str]) -> dict[str, Any] | None:
    for index, result in enumerate(results):
        echoed = result.get("properties")
        if isinstance(echoed, dict) and all(echoed.get(k) == v for k, v in properties.items()):
            return results.pop(index)
    return None


def throttled_s(answer: Answer) -> float:
    """How long a 429 tells every caller to pause: its Retry-After, 1 s when it names none; 0 for
    any other answer."""
    return _retry_after(answer, default=1.0) if answer.status == 429 else 0.0


def _retry_after(answer: Answer, default: float) -> float:
    value = answer.header("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def failed_message_ids(messages: Sequence[Message], outcomes: Mapping[str, Outcome]) -> list[str]:
    """The retries, in batch order. A message without an outcome is retried (nothing is lost).
    FIFO: once a message of a group must retry, every later message of that group is listed."""
    retried = {
        m.message_id for m in messages if (o := outcomes.get(m.message_id)) is None or o.state is State.RETRY
    }
    if not retried:  # the usual batch: nothing retried, so nothing blocked (two passes fewer)
        return []
    blocked = fifo_blocked(messages, retried)
    return [m.message_id for m in messages if m.message_id in blocked]


def fifo_blocked(messages: Sequence[Message], failed: set[str]) -> set[str]:
    """The one home of the FIFO rule: ``failed`` plus every later message of a group in which a
    message failed (SQS must hand them back in order, after it)."""
    blocked = set(failed)
    groups: set[str] = set()
    for message in messages:
        if message.group_id is not None and message.group_id in groups:
            blocked.add(message.message_id)
        if message.message_id in blocked and message.group_id is not None:
            groups.add(message.group_id)
    return blocked


def fifo_rounds(messages: Sequence[Message], failed: set[str]) -> Iterator[list[Message]]:
    """Messages in rounds that keep FIFO order: at most one message of a group per round, in batch
    order. The caller adds to ``failed`` what failed in a round; a later message of that group
    is then not handed out but added to ``failed`` too (``fifo_blocked``)."""
    pending = list(messages)
    while pending:
        blocked = fifo_blocked(messages, failed)
        failed |= {m.message_id for m in pending if m.message_id in blocked}
        round_, later, groups = [], [], set()
        for message in pending:
            if message.message_id in blocked:
                continue
            if message.group_id is not None and message.group_id in groups:
                later.append(message)
            else:
                round_.append(message)
                if message.group_id is not None:
                    groups.add(message.group_id)
        if round_:
            yield round_
        pending = later


def batch_response(failed_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_ids]}
