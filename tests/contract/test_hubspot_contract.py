"""Contract: the simulated HubSpot (simulation/hubspot.py) answers as the sandbox does.

The same scenarios run through the real ``HubSpotClient`` against the sandbox (over HTTP) and through
``SimHubSpot``, on a parametrized fixture (``target``), and each is held to what the drain relies on:
status, ``batching.settle``'s verdict and outcomes, per-input errors, unique values, upsert's
``new``, the rate-limit headers and 429s, and the faults. ``test_the_sim_answers_as_the_sandbox``
runs each scenario on both and compares the whole answers (timestamps and correlation ids aside).
What the sandbox cannot be driven to cheaply (virtual time: the window's end, the daily reset,
outages, deadlines) is tested on the sim alone, citing HubSpot's document.
"""

from __future__ import annotations

import inspect
import json
import random
import socket
import time

import pytest
from payments_drain.adapters.hubspot import EXPECTED_ANSWER_S, HubSpotClient
from payments_drain.core import limits
from payments_drain.core.batching import SETTLED, SPLIT, STOP, TRANSIENT, settle
from payments_drain.core.messages import parse_record
from payments_drain.core.reading import Read, applied, read_of

from local.hubspot_sandbox import DEFAULT_TOKEN
from local.hubspot_sandbox.state import FIRST_ID
from simulation.clock import VirtualClock
from simulation.hubspot import HubSpotFaults, SimHubSpot
from tests.twins import payment_body, sqs_record

KEY = "payment_key"
DAILY = limits.HUBSPOT_DAILY_PROFESSIONAL.value
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)
# A fault of the sim, and the sandbox's faults that give the same thing.
SANDBOX_FAULTS = {
    "reset": {"p_reset": 1.0},
    "429": {"p_429": 1.0},
    "5xx": {"p_503": 1.0},
    "stored_then_5xx": {"p_stored_then_error": 1.0},
    "stored_then_timeout": {"p_stored_then_timeout": 1.0, "stored_then_timeout_delay_s": 1.0},
    "unreadable_2xx": {"p_stored_then_unreadable": 1.0},
    "2xx_with_errors": {"p_2xx_with_errors": 1.0},
}
# A fault of the sim as a batch/read meets it, and the sandbox's read_script that gives the same.
SANDBOX_READ_FAULTS = {"reset": ["reset"], "429": ["429"], "5xx": ["503"]}


# ---------------------------------------------------------------------------------- the two sides
class SandboxTarget:
    def __init__(
        self,
        sandbox,
        *,
        write_mode="create",
        unique_property=None,
        limit_per_10s=190,
        daily_limit=DAILY,
        fault=None,
    ):
        self.sandbox = sandbox
        sandbox.control.set_config(
            unique_property=unique_property, rate_limit_per_10s=limit_per_10s, daily_limit=daily_limit
        )
        sandbox.control.set_faults(**SANDBOX_FAULTS.get(fault, {}))
        base_url = _closed_port_url() if fault == "connect_error" else sandbox.base_url
        # v3's paths: the simulation answers input errors as v3 does (207); the date version's one
        # success status is held by the sandbox's own tests (tests/sandbox/test_sandbox_links.py).
        self.client = HubSpotClient(base_url, api_version="v3", connect_timeout_s=0.5, write_mode=write_mode)

    def write(self, inputs, time_left_s=None, token=DEFAULT_TOKEN):
        return self.client.write_batch(inputs, token, time_left_s)

    def read(self, ids, properties=(), id_property=None, time_left_s=None, token=DEFAULT_TOKEN):
        return self.client.read_batch(ids, token, properties, id_property, time_left_s)

    def fail_next_read(self, fault):
        self.sandbox.control.set_faults(read_script=SANDBOX_READ_FAULTS[fault])

    def stored(self):
        return self.sandbox.control.payments()


class SimTarget:
    def __init__(self, *, fault=None, **options):
        faults = HubSpotFaults(**({f"p_{fault}": 1.0} if fault else {}))
        self.sim = SimHubSpot(
            VirtualClock(), random.Random(7), faults=faults, tokens={DEFAULT_TOKEN}, **options
        )

    def write(self, inputs, time_left_s=None, token=DEFAULT_TOKEN):
        return self.sim.write_batch(inputs, token, time_left_s)

    def read(self, ids, properties=(), id_property=None, time_left_s=None, token=DEFAULT_TOKEN):
        return self.sim.read_batch(ids, token, properties, id_property, time_left_s)

    def fail_next_read(self, fault):
        self.sim.faults = HubSpotFaults(**{f"p_{fault}": 1.0})

    def stored(self):
        return self.sim.records


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _make(side, request):
    if side == "sim":
        return lambda **options: SimTarget(**options)
    sandbox = request.getfixturevalue("hubspot_sandbox")
    return lambda **options: SandboxTarget(sandbox, **options)


@pytest.fixture(params=["sandbox", "sim"])
def target(request):
    """``target(**options) -> SandboxTarget | SimTarget``; options are SimHubSpot's, plus ``fault``."""
    return _make(request.param, request)


# ---------------------------------------------------------------------------------- payments
def payments(*keys, start=0, unique=None, upsert=False, sent_ms=None):
    """Payments keyed ``keys`` with message ids m<start>, m<start+1>..., as the drain parses them."""
    return [
        parse_record(
            sqs_record(payment_body(key, amount=f"{i}.50"), f"m{start + i}", sent_ms=sent_ms), unique, upsert
        )
        for i, key in enumerate(keys)
    ]


def inputs(chunk, upsert=False):
    return [p.upsert_input(KEY) if upsert else p.hubspot_input() for p in chunk]


def outcomes(chunk, answer, unique=None):
    verdict = settle(chunk, answer, unique)
    states = {
        m: (o.state.value, o.hubspot_id, o.updated, o.reason and o.reason.category)
        for m, o in verdict.outcomes.items()
    }
    return verdict.action, verdict.ambiguous, states


def ids(target):
    return [r["id"] for r in target.stored()]


# ---------------------------------------------------------------------------------- both sides
def test_create_stores_every_input_and_settles_by_trace_id(target):
    hub = target()
    chunk = payments("k0", "k1", "k2")
    answer = hub.write(inputs(chunk))
    assert answer.status == 201
    assert {r["objectWriteTraceId"] for r in answer.body["results"]} == {"m0", "m1", "m2"}
    stored = {r["objectWriteTraceId"]: r["id"] for r in hub.stored()}
    assert outcomes(chunk, answer) == (
        SETTLED,
        False,
        {m: ("created", stored[m], False, None) for m in ("m0", "m1", "m2")},
    )


def test_207_maps_each_error_to_its_input(target):
    hub = target()
    chunk = payments("k0", "k1", "k2")
    sent = inputs(chunk)
    sent[1]["properties"] = {**sent[1]["properties"], "hs_latest_status": "paid"}
    del sent[2]["properties"]["hs_initial_amount"]
    answer = hub.write(sent)
    assert answer.status == 207 and answer.body["numErrors"] == 2
    action, ambiguous, states = outcomes(chunk, answer)
    assert (action, ambiguous) == (SETTLED, False)
    assert {m: s[0] for m, s in states.items()} == {"m0": "created", "m1": "rejected", "m2": "rejected"}
    assert states["m1"][3] == states["m2"][3] == "VALIDATION_ERROR"
    codes = {e["context"]["objectWriteTraceId"][0]: e["errors"][0]["code"] for e in answer.body["errors"]}
    assert codes == {"m1": "INVALID_OPTION", "m2": "MISSING_REQUIRED_PROPERTY"}
    assert len(hub.stored()) == 1


def test_more_inputs_than_a_batch_takes_is_a_400_and_nothing_is_stored(target):
    hub = target()
    chunk = payments(*(f"k{i}" for i in range(limits.HUBSPOT_BATCH_INPUTS.value + 1)))
    answer = hub.write(inputs(chunk))
    assert answer.status == 400 and answer.body["category"] == "VALIDATION_ERROR"
    assert settle(chunk, answer).action == SPLIT
    assert hub.stored() == []


def test_a_unique_value_stored_or_repeated_is_a_duplicate_of_the_first(target):
    hub = target(unique_property=KEY)
    first = payments("k1", unique=KEY)
    assert hub.write(inputs(first)).status == 201
    chunk = payments("k1", "k2", "k2", start=1, unique=KEY)
    answer = hub.write(inputs(chunk))
    assert answer.status == 207
    k1, k2 = ids(hub)
    assert outcomes(chunk, answer, KEY)[2] == {
        "m1": ("duplicate", k1, False, "CONFLICT"),
        "m2": ("created", k2, False, None),
        "m3": ("duplicate", k2, False, "CONFLICT"),
    }
    assert len(hub.stored()) == 2


def test_without_trace_ids_a_unique_conflict_refuses_the_whole_request_409(target):
    hub = target(unique_property=KEY)
    hub.write(inputs(payments("k1", unique=KEY)))
    chunk = payments("k1", start=1, unique=KEY)
    sent = [{k: v for k, v in item.items() if k != "objectWriteTraceId"} for item in inputs(chunk)]
    answer = hub.write(sent)
    assert answer.status == 409 and answer.body["category"] == "CONFLICT"
    assert outcomes(chunk, answer, KEY)[2] == {"m1": ("duplicate", ids(hub)[0], False, "CONFLICT")}


def test_upsert_creates_then_updates_and_says_which(target):
    hub = target(write_mode="upsert", unique_property=KEY)
    first = payments("k1", "k2", unique=KEY, upsert=True)
    answer = hub.write(inputs(first, upsert=True))
    assert answer.status == 200 and {r["new"] for r in answer.body["results"]} == {True}
    k1, k2 = ids(hub)
    chunk = payments("k1", "k3", start=2, unique=KEY, upsert=True)
    sent = inputs(chunk, upsert=True)
    sent[0]["properties"]["hs_latest_status"] = "refunded"
    del sent[1]["properties"]["hs_initial_amount"]  # k3 is new: it needs its required properties
    answer = hub.write(sent)
    assert answer.status == 207
    assert outcomes(chunk, answer, KEY)[2] == {
        "m2": ("created", k1, True, None),
        "m3": ("rejected", None, False, "VALIDATION_ERROR"),
    }
    assert [r["properties"].get("hs_latest_status") for r in hub.stored()] == ["refunded", None]


def test_rate_limit_headers_count_down_and_the_request_past_the_limit_is_a_429(target):
    hub = target(limit_per_10s=3)
    answers = [hub.write(inputs(payments(f"k{i}", start=i))) for i in range(4)]
    assert [a.status for a in answers] == [201, 201, 201, 429]
    assert [a.header("X-HubSpot-RateLimit-Remaining") for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        assert answer.header("X-HubSpot-RateLimit-Max") == "3"
        assert answer.header("X-HubSpot-RateLimit-Interval-Milliseconds") == str(
            limits.HUBSPOT_WINDOW_MS.value
        )
        assert answer.header("X-HubSpot-RateLimit-Daily") == str(DAILY)
        assert answer.header("X-HubSpot-Correlation-Id")
    assert answers[-1].header("X-HubSpot-RateLimit-Daily-Remaining") == str(DAILY - 3)  # the 429: not counted
    body = answers[-1].body
    assert (body["status"], body["errorType"], body["policyName"]) == (
        "error",
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert settle(payments("k3", start=3), answers[-1]).action == TRANSIENT
    assert len(hub.stored()) == 3


def test_past_the_daily_limit_a_429_daily_stops_the_drain(target):
    hub = target(daily_limit=2)
    answers = [hub.write(inputs(payments(f"k{i}", start=i))) for i in range(3)]
    assert [a.status for a in answers] == [201, 201, 429]
    body = answers[-1].body
    assert (body["errorType"], body["policyName"], body["message"]) == (
        "RATE_LIMIT",
        "DAILY",
        "You have reached your daily limit.",
    )
    assert answers[-1].header("X-HubSpot-RateLimit-Daily-Remaining") == "0"
    assert settle(payments("k2", start=2), answers[-1]).action == STOP


def test_an_unknown_token_is_a_401(target):
    answer = target().write(inputs(payments("k0")), token="nope")
    assert answer.status == 401 and answer.body["category"] == "INVALID_AUTHENTICATION"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("connect_error", ((None, "connect"), (TRANSIENT, False), 0)),
        ("reset", ((None, "protocol"), (TRANSIENT, True), 0)),
        ("429", ((429, None), (TRANSIENT, False), 0)),
        ("5xx", (("5xx", None), (TRANSIENT, True), 0)),
        ("stored_then_5xx", ((502, None), (TRANSIENT, True), 2)),
        ("stored_then_timeout", ((None, "timeout"), (TRANSIENT, True), 2)),
        ("unreadable_2xx", ((201, None), (SETTLED, False), 2)),
        ("2xx_with_errors", ((201, None), (SETTLED, False), 1)),
    ],
)
def test_faults(target, fault, expected):
    """Each fault as the drain sees it: (status, error), (verdict, ambiguous), payments stored.
    ``2xx_with_errors`` sends one bad input: its error is in a 201 (HubSpot's 2026-09 create)."""
    hub = target(fault=fault)
    chunk = payments("k0", "k1")
    sent = inputs(chunk)
    if fault == "2xx_with_errors":
        sent[1]["properties"] = {**sent[1]["properties"], "hs_latest_status": "paid"}
    answer = hub.write(sent, time_left_s=0.5)
    status = "5xx" if answer.status and answer.status >= 500 and fault == "5xx" else answer.status
    verdict = settle(chunk, answer)
    assert ((status, answer.error), (verdict.action, verdict.ambiguous), len(hub.stored())) == expected
    if fault == "unreadable_2xx":
        assert answer.body is None and {o.state.value for o in verdict.outcomes.values()} == {"created"}
    if fault == "2xx_with_errors":
        assert answer.body["numErrors"] == 1 and verdict.outcomes["m1"].state.value == "rejected"


# ---------------------------------------------------------------------------------- batch/read
def _stored_k1_k2(hub):
    # Sent before either side's clock (the sim's is virtual) made a record: they are these messages'.
    chunk = payments("k1", "k2", unique=KEY, sent_ms=1_000)
    assert hub.write(inputs(chunk)).status == 201
    return chunk, {r["properties"][KEY]: r["id"] for r in hub.stored()}


def _read(hub, keys, chunk):
    names = sorted({name for p in chunk for name in p.properties} | {KEY})
    answer = hub.read(keys, names, KEY)
    return answer, read_of(answer, keys, KEY)


def test_a_read_by_the_unique_property_finds_what_is_stored_and_names_what_is_not(target):
    """The read-back's read (sender.ChunkSender._read_back): found, not found, a mix."""
    hub = target(unique_property=KEY)
    chunk, stored = _stored_k1_k2(hub)
    answer, read = _read(hub, ["k1", "k2"], chunk)
    assert answer.status == 200 and "errors" not in answer.body
    assert ({k: [r.id for r in rs] for k, rs in read.found.items()}, read.missing, read.unknown) == (
        {"k1": [stored["k1"]], "k2": [stored["k2"]]},
        set(),
        set(),
    )
    assert read.found["k1"][0].properties["hs_initial_amount"] == "0.50"
    assert read.found["k1"][0].created_at and read.found["k1"][0].updated_at
    answer, read = _read(hub, ["k9"], chunk)
    assert (answer.status, answer.body["numErrors"], answer.body["errors"][0]["category"]) == (
        207,
        1,
        "OBJECT_NOT_FOUND",
    )
    assert read == Read({}, {"k9"}, set())
    answer, read = _read(hub, ["k1", "k9", "k2", "k8"], chunk)
    assert answer.status == 207 and answer.body["errors"][0]["context"]["ids"] == ["k9", "k8"]
    assert (set(read.found), read.missing, read.unknown) == ({"k1", "k2"}, {"k9", "k8"}, set())
    # what the sender makes of it: the chunk's own records, settled as created by their ids
    outcomes = applied(chunk, read, KEY, upsert=False)
    assert {m: (o.state.value, o.hubspot_id) for m, o in outcomes.items()} == {
        "m0": ("created", stored["k1"]),
        "m1": ("created", stored["k2"]),
    }
    assert len(hub.stored()) == 2  # reading stores nothing


def test_a_read_counts_in_the_rate_limit_and_one_past_it_is_a_429(target):
    hub = target(unique_property=KEY, limit_per_10s=3)
    chunk, _ = _stored_k1_k2(hub)
    answers = [_read(hub, ["k1"], chunk)[0] for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert [a.header("X-HubSpot-RateLimit-Remaining") for a in answers] == ["1", "0", "0"]
    assert answers[-1].header("X-HubSpot-RateLimit-Daily-Remaining") == str(DAILY - 3)  # not counted
    assert (answers[-1].body["errorType"], answers[-1].body["policyName"]) == (
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert read_of(answers[-1], ["k1"], KEY) is None
    assert hub.write(inputs(payments("k3", start=3, unique=KEY))).status == 429  # the reads took the window


@pytest.mark.parametrize(
    ("fault", "expected"), [("429", (429, None)), ("5xx", ("5xx", None)), ("reset", (None, "protocol"))]
)
def test_a_read_that_fails_says_nothing_of_what_is_stored(target, fault, expected):
    hub = target(unique_property=KEY)
    chunk, _ = _stored_k1_k2(hub)
    hub.fail_next_read(fault)
    answer, read = _read(hub, ["k1", "k2"], chunk)
    status = "5xx" if answer.status and answer.status >= 500 else answer.status
    assert ((status, answer.error), read) == (expected, None)


# ---------------------------------------------------------------------------------- whole answers
VOLATILE = {
    "createdAt",
    "updatedAt",
    "startedAt",
    "completedAt",
    "hs_createdate",
    "hs_lastmodifieddate",
    "correlationId",
    "groupName",
}


def _normal(value):
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return sorted((_normal(v) for v in value), key=json.dumps)
    return value


def _scenario(name, make):
    """Answers to one scenario, as comparable data."""
    bad = {"hs_latest_status": "paid", "hs_currency_code": "eur", "hs_initiated_date": "yesterday"}
    if name == "validation":
        hub, sent = make(), inputs(payments("k0", "k1", "k2", "k3"))
        for item, (prop, value) in zip(sent[1:], bad.items()):
            item["properties"] = {**item["properties"], prop: value}
        calls = [sent, [{k: v for k, v in i.items() if k != "objectWriteTraceId"} for i in sent]]
    elif name == "unique":
        hub = make(unique_property=KEY)
        calls = [inputs(payments("k1", unique=KEY)), inputs(payments("k1", "k2", "k2", start=1, unique=KEY))]
        calls.append([{"properties": item["properties"]} for item in calls[1]])  # without trace ids: 409
        calls.append([{"properties": payments("k5", unique=KEY)[0].properties}] * 2)  # twice in one request
    elif name == "upsert":
        hub = make(write_mode="upsert", unique_property=KEY)
        calls = [inputs(payments("k1", "k2", unique=KEY, upsert=True), upsert=True)]
        calls.append(inputs(payments("k1", "k3", "k4", start=2, unique=KEY, upsert=True), upsert=True))
        calls[1][0]["properties"]["hs_latest_status"] = "refunded"
        del calls[1][1]["properties"]["hs_initial_amount"]
        calls.append([dict(calls[1][2], objectWriteTraceId="m9"), calls[1][2]])  # the same id twice
    elif name == "read":  # by the unique property, by id, refused, then past the rate limit
        hub = make(unique_property=KEY, limit_per_10s=8)
        names = ["hs_initial_amount", KEY]
        calls = [inputs(payments("k1", "k2", unique=KEY))]
        calls += [("read", ids, names, KEY) for ids in (["k1", "k2"], ["k9"], ["k2", "k9", "k1", "k8", "k2"])]
        calls += [("read", [str(FIRST_ID + 1), "1"], [], None), ("read", ["k1"], names, "hs_latest_status")]
        calls += [("read", [], names, KEY), ("read", [f"k{i}" for i in range(101)], names, KEY)]
        calls += [("read", ["k1"], names, KEY)]
    else:  # limits
        hub = make(limit_per_10s=10, daily_limit=3)
        calls = [inputs(payments("k0")), []] + [inputs(payments(f"k{i}", start=i)) for i in range(1, 4)]
    out = []
    for sent in calls:
        answer = hub.read(*sent[1:]) if isinstance(sent, tuple) else hub.write(sent)
        headers = {h: answer.header(h) for h in RATE_HEADERS}
        out.append((answer.status, answer.error, _normal(answer.body), headers))
    return out, _normal(hub.stored())


@pytest.mark.parametrize("name", ["validation", "unique", "upsert", "limits", "read"])
def test_the_sim_answers_as_the_sandbox(hubspot_sandbox, request, name):
    sandbox = _scenario(name, _make("sandbox", request))
    assert _scenario(name, _make("sim", request)) == sandbox
    assert {status for status, *_ in sandbox[0]} - {200, 201}  # each scenario reaches an error answer


# ---------------------------------------------------------------------------------- the sim alone
def sim(**options):
    clock = VirtualClock()
    return clock, SimHubSpot(clock, random.Random(options.pop("seed", 1)), **options)


def test_same_seed_same_faults_and_answers():
    faults = HubSpotFaults(
        latency_s=0.2,
        latency_jitter_s=0.5,
        p_connect_error=0.05,
        p_reset=0.05,
        p_429=0.05,
        p_5xx=0.05,
        p_stored_then_5xx=0.05,
        p_stored_then_timeout=0.05,
        p_unreadable_2xx=0.05,
        p_2xx_with_errors=0.05,
    )

    def run(seed):
        clock, hub = sim(seed=seed, faults=faults, unique_property=KEY)
        answers = []
        for i in range(200):
            answer = hub.write_batch(inputs(payments(f"k{i % 50}", start=i, unique=KEY)), "t", 0.6)
            answers.append((answer.status, answer.error, answer.latency_ms, answer.body))
        return answers, hub.records, hub.statuses, clock.wall()

    first = run(3)
    assert run(3) == first
    assert run(4) != first
    assert {"connect", "protocol", "timeout", "429", "502", "201", "207"} <= set(first[2])


def test_defaults_are_hubspot_client_s_and_min_call_s_is_computed_alike():
    client = inspect.signature(HubSpotClient).parameters
    ours = inspect.signature(SimHubSpot).parameters
    for name in ("connect_timeout_s", "read_timeout_s"):
        assert ours[name].default == client[name].default
    clock, hub = sim(faults=HubSpotFaults(latency_s=0.4))
    assert hub.min_call_s() == hub.connect_timeout_s + EXPECTED_ANSWER_S
    hub.write_batch(inputs(payments("k0")), "t")
    assert hub.min_call_s() == pytest.approx(hub.connect_timeout_s + 0.4)


def test_a_call_ends_by_its_deadline_and_was_applied_if_hubspot_got_it():
    """Latency 4 s: HubSpot gets the request at 2 s. Given 1 s it never arrived; given 3 s it was
    stored although the answer never came; without a deadline the read timeout ends the wait."""
    clock, hub = sim(faults=HubSpotFaults(latency_s=4.0))
    for time_left, stored in ((1.0, 0), (3.0, 1)):
        start = clock.wall()
        answer = hub.write_batch(inputs(payments(f"k{time_left}")), "t", time_left)
        assert (answer.status, answer.error, clock.wall() - start, len(hub.records)) == (
            None,
            "timeout",
            time_left,
            stored,
        )
    clock, hub = sim(faults=HubSpotFaults(latency_s=20.0))
    answer = hub.write_batch(inputs(payments("k0")), "t")
    assert (answer.error, clock.wall() - 1_796_083_200.0, len(hub.records)) == ("timeout", 15.0, 1)


def test_outages():
    clock = VirtualClock()
    t = clock.wall()
    outages = [(t, t + 60, "503"), (t + 60, t + 120, "connect"), (t + 120, t + 180, "hang")]
    hub = SimHubSpot(clock, random.Random(1), faults=HubSpotFaults(outages=outages))
    seen = []
    for at in (t, t + 60, t + 120, t + 180):
        clock.sleep(at - clock.wall())
        answer = hub.write_batch(inputs(payments(f"k{at}")), "t", 10.0)
        seen.append((answer.status, answer.error, round(clock.wall() - at, 2)))
    assert seen == [
        (503, None, 0),
        (None, "connect", hub.connect_timeout_s),
        (None, "timeout", 10.0),
        (201, None, 0),
    ]
    assert len(hub.records) == 1 and sum(hub.daily.values()) == 2  # the 503 and the 201 were counted


def test_the_rolling_window():
    """A request leaves the count one interval after it was counted; a 429 is not counted
    (docs/hubspot.md; limits.HUBSPOT_WINDOW_MS, from HubSpot's usage details page)."""
    clock, hub = sim(limit_per_10s=3)
    window = limits.HUBSPOT_WINDOW_MS.value / 1000
    statuses = [hub.write_batch(inputs(payments(f"k{i}", start=i)), "t").status for i in range(3)]
    clock.sleep(window - 0.5)
    statuses.append(hub.write_batch(inputs(payments("k3", start=3)), "t").status)
    clock.sleep(0.5)  # exactly one interval after the first three
    statuses += [hub.write_batch(inputs(payments(f"k{i}", start=i)), "t").status for i in (4, 5, 6, 7)]
    assert statuses == [201, 201, 201, 429, 201, 201, 201, 429]
    assert (hub.max_in_window, hub.rate_limited["TEN_SECONDLY_ROLLING"], hub.in_window()) == (3, 2, 3)


def test_the_daily_limit_resets_at_midnight_in_the_account_s_time_zone():
    """HubSpot's daily limit resets at midnight in the account's time zone (limits.HUBSPOT_DAILY_PROFESSIONAL,
    https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines). The clock starts at
    2026-12-01T00:00Z, 19:00 on 30 November in New York: the day there ends at 05:00Z."""
    assert "usage-guidelines" in limits.HUBSPOT_DAILY_PROFESSIONAL.source
    clock, hub = sim(daily_limit=2, account_timezone="America/New_York")
    statuses = [hub.write_batch(inputs(payments(f"k{i}", start=i)), "t").status for i in range(3)]
    clock.sleep(5 * 3600 - 0.5)
    statuses.append(hub.write_batch(inputs(payments("k3", start=3)), "t").status)
    clock.sleep(0.5)  # 05:00Z: midnight in New York
    answer = hub.write_batch(inputs(payments("k4", start=4)), "t")
    assert statuses + [answer.status] == [201, 201, 429, 429, 201]
    assert answer.header("X-HubSpot-RateLimit-Daily-Remaining") == "1"
    assert dict(hub.daily) == {"2026-11-30": 2, "2026-12-01": 1}
    assert hub.rate_limited["DAILY"] == 2


def test_ground_truth_counts_payments_per_key_and_keeps_every_write():
    clock, hub = sim(key_of=lambda item: item["properties"]["hs_reference_number"])
    sent = [
        {"properties": {**p.properties, "hs_reference_number": "pay-1"}, "objectWriteTraceId": p.message_id}
        for p in payments("a", "b")
    ]
    hub.write_batch(sent[:1], "t")
    hub.write_batch(sent[1:], "t")  # the same payment again, under another message: HubSpot stores it twice
    assert hub.count("pay-1") == 2 and len(hub.writes["pay-1"]) == 2

    clock, hub = sim(write_mode="upsert", unique_property=KEY)
    for i, status in enumerate(("processing", "succeeded", "refunded")):
        (item,) = inputs(payments("k1", start=i, unique=KEY, upsert=True), upsert=True)
        item["properties"]["hs_latest_status"] = status
        clock.sleep(1)
        hub.write_batch([item], "t")
    writes = hub.writes["k1"]
    assert [(w.new, w.properties["hs_latest_status"]) for w in writes] == [
        (True, "processing"),
        (False, "succeeded"),
        (False, "refunded"),
    ]
    assert [w.at - writes[0].at for w in writes] == [0, 1, 2] and hub.count("k1") == 1


def test_a_simulated_day_never_sleeps_for_real(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("slept for real"))
    clock, hub = sim(faults=HubSpotFaults(latency_s=0.3, latency_jitter_s=0.3, p_5xx=0.1))
    while clock.wall() < 1_796_083_200.0 + 86_400:
        hub.write_batch(inputs(payments("k")), "t", 2.0)
        clock.sleep(60)
    assert sum(hub.statuses.values()) > 1000


def test_fault_probabilities_above_1_and_unknown_outages_are_refused():
    with pytest.raises(ValueError):
        HubSpotFaults(p_429=0.6, p_5xx=0.6)
    with pytest.raises(ValueError):
        HubSpotFaults(outages=[(0, 1, "flood")])


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("stored_then_timeout", (None, "timeout", 0.5)),
        ("stored_then_5xx", (502, None, 0.2)),
        ("unreadable_2xx", (200, None, 0.2)),
        ("connect_error", (None, "connect", 0.5)),
    ],
)
def test_a_read_meets_the_faults_after_storing_as_a_read_can(fault, expected):
    """The sandbox's read_script has no read without an answer, nor an unreadable one: the sim's
    read meets every write fault (nothing is stored by a read, so one after storing is a 502, no
    answer, or a 200 whose body cannot be read), and none of them says what HubSpot holds."""
    clock, hub = sim(unique_property=KEY, faults=HubSpotFaults(latency_s=0.2))
    hub.write_batch(inputs(payments("k1", unique=KEY)), "t")
    hub.faults = HubSpotFaults(latency_s=0.2, **{f"p_{fault}": 1.0})
    start, counted = clock.wall(), sum(hub.daily.values())
    answer = hub.read_batch(["k1"], "t", [KEY], KEY, time_left_s=0.5)
    assert (answer.status, answer.error, round(clock.wall() - start, 2)) == expected
    assert read_of(answer, ["k1"], KEY) is None and len(hub.records) == 1
    assert sum(hub.daily.values()) - counted == (0 if fault == "connect_error" else 1)
    assert hub.reads["answered"] == 0
