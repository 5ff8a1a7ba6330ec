"""Property-based tests (Hypothesis) of the invariant on the core and the orchestration:
for any batch and any HubSpot answers, every message gets exactly one outcome, and
batchItemFailures names exactly the retries, only messages of the batch, each once."""

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payments_drain.core import batching
from payments_drain.core.batching import Answer, settle
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Payment, Rejection, State
from payments_drain.orchestration.drain import Budget, Drain
from payments_drain.orchestration.pacing import RateGate

from tests.twins import (
    InMemoryLedger,
    InMemoryReporter,
    ScriptedHubSpot,
    StaticToken,
    created,
    payment_body,
    sqs_record,
)

CATEGORIES = ["VALIDATION_ERROR", "CONFLICT", "INTERNAL_ERROR", "RATE_LIMIT", "OBJECT_ALREADY_EXISTS", None]
STATUSES = [400, 401, 403, 404, 409, 413, 423, 429, 477, 500, 502, 503, 504, 521]

answer_specs = st.one_of(
    st.tuples(st.just("created"), st.booleans(), st.integers(0, 2**16)),
    st.tuples(st.just("multi"), st.booleans(), st.integers(0, 2**16)),
    st.tuples(
        st.just("status"), st.sampled_from(STATUSES), st.sampled_from(["DAILY", "TEN_SECONDLY_ROLLING", None])
    ),
    st.tuples(st.just("none"), st.sampled_from(["connect", "timeout", "protocol"]), st.just(0)),
    st.tuples(st.just("garbage"), st.sampled_from([201, 207, 200]), st.just(0)),
)


def answer_for(spec, inputs):
    """A HubSpot answer to ``inputs`` as ``spec`` says: results shuffled, errors in any order."""
    kind, a, b = spec
    if kind == "created":
        answer = created(inputs)
        random.Random(b).shuffle(answer.body["results"])
        if not a:  # HubSpot may not echo trace ids
            for result in answer.body["results"]:
                result.pop("objectWriteTraceId")
        return answer
    if kind == "multi":
        rng = random.Random(b)
        failing = [i for i in inputs if rng.random() < 0.5]
        errors = [
            {
                "status": "error",
                "category": rng.choice(CATEGORIES),
                "message": rng.choice(["x", "Existing ID: 12"]),
                "context": {"objectWriteTraceId": [i["objectWriteTraceId"]]},
            }
            for i in failing
        ]
        rng.shuffle(errors)
        answer = created(inputs, 207, errors)
        for error in answer.body.get("errors", []):
            if not a and rng.random() < 0.2:  # an error that does not name its input
                error["context"] = {}
        rng.shuffle(answer.body["results"])
        return answer
    if kind == "status":
        return Answer(
            a, {"status": "error", "category": "X", "policyName": b, "message": "m"}, {"Retry-After": "0"}
        )
    if kind == "none":
        return Answer(None, error=a)
    return Answer(a, None)  # an unreadable body


class Clock:
    now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


bodies = st.one_of(
    st.builds(
        lambda k, amount: payment_body(k, amount=amount),
        st.text("abcdefgh0123456789_", min_size=1, max_size=6),
        st.sampled_from(["1", "2.50", "x", "-3"]),
    ),
    st.just("{not json"),
    st.just({"properties": {"hs_initial_amount": "1"}}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bodies=st.lists(bodies, min_size=1, max_size=230),
    specs=st.lists(answer_specs, max_size=12),
    unique=st.sampled_from([None, "payment_key"]),
    ledger=st.booleans(),
    fifo=st.booleans(),
    failing_reports=st.sets(st.integers(0, 230), max_size=5),
)
def test_every_message_gets_exactly_one_outcome(bodies, specs, unique, ledger, fifo, failing_reports):
    records = [
        sqs_record(body, f"m{i}", group_id=f"g{i % 3}" if fifo else None) for i, body in enumerate(bodies)
    ]
    script = [lambda inputs, spec=spec: answer_for(spec, inputs) for spec in specs]
    hubspot = ScriptedHubSpot(script)
    clock = Clock()
    reporter = InMemoryReporter(fail_ids=[f"m{i}" for i in failing_reports])
    drain = Drain(
        hubspot,
        StaticToken(),
        InMemoryLedger() if ledger else None,
        reporter,
        unique_property=unique,
        parallel_calls=1,
        gate=RateGate(190, clock=clock),
        sleep=clock.sleep,
        rng=random.Random(0),
    )
    result = drain.run(records, Budget(120.0, clock), "req")

    ids = [r["messageId"] for r in records]
    assert set(result.outcomes) == set(ids)  # exactly one outcome each (a dict: one per id)
    failed = [f["itemIdentifier"] for f in result.response["batchItemFailures"]]
    assert len(failed) == len(set(failed)) and set(failed) <= set(ids)
    assert set(failed) == {k for k, o in result.outcomes.items() if o.state is State.RETRY}
    reported = [r["messageId"] for r in reporter.sent]
    assert len(reported) == len(set(reported))
    assert set(reported) == {k for k, o in result.outcomes.items() if o.state is State.REJECTED}
    sent = [i["objectWriteTraceId"] for inputs, _ in hubspot.calls for i in inputs]
    created_ids = {k for k, o in result.outcomes.items() if o.state is State.CREATED}
    assert created_ids <= set(sent)  # nothing is "created" that was never sent
    if fifo:  # a retried message is never followed by a settled one of its group
        blocked = set()
        for record in records:
            group = record["attributes"]["MessageGroupId"]
            if group in blocked:
                assert record["messageId"] in failed
            if record["messageId"] in failed:
                blocked.add(group)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 100), spec=answer_specs, unique=st.sampled_from([None, "payment_key"]))
def test_settle_decides_for_exactly_the_chunk_or_asks_to_act(n, spec, unique):
    chunk = [parse_record(sqs_record(payment_body(f"k{i}"), f"m{i}")) for i in range(n)]
    verdict = settle(chunk, answer_for(spec, [p.hubspot_input() for p in chunk]), unique)
    if verdict.action == batching.SETTLED:
        assert set(verdict.outcomes) == {p.message_id for p in chunk}
    else:
        assert verdict.outcomes == {} and verdict.action in (
            batching.SPLIT,
            batching.REFRESH,
            batching.TRANSIENT,
            batching.STOP,
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)
fuzz_bodies = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    json_values.map(json.dumps),
    st.builds(lambda props: json.dumps({"paymentKey": "k", "properties": props}), json_values),
    st.builds(lambda assoc: json.dumps({**payment_body("k"), "associations": assoc}), json_values),
    st.integers(1, 50_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 50_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.builds(
        lambda c, n: json.dumps(payment_body("k", hs_internal_comment=c * n)),
        st.sampled_from("ß€😀a\u0000"),
        st.integers(65_530, 70_000),
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(body=fuzz_bodies)
def test_fuzzed_bodies_never_raise_and_each_bad_one_is_reported_with_a_specific_reason(body):
    record = sqs_record(body, "m-fuzz")
    parsed = parse_record(record)
    if isinstance(parsed, Payment):
        assert set(parsed.properties) >= {"hs_initial_amount", "hs_initiated_date"}
        return
    assert isinstance(parsed, Rejection)
    assert parsed.reason.code and parsed.reason.message and parsed.reason.category == "INVALID_MESSAGE"
    reporter = InMemoryReporter()
    clock = Clock()
    result = Drain(
        ScriptedHubSpot(), StaticToken(), None, reporter, gate=RateGate(190, clock=clock), sleep=clock.sleep
    ).run([record], Budget(60.0, clock), "req")
    assert result.response == {"batchItemFailures": []}
    assert [r["messageId"] for r in reporter.sent] == ["m-fuzz"]
    assert reporter.sent[0]["reason"]["code"] == parsed.reason.code
