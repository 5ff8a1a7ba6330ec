"""The HubSpot adapter over real HTTP on loopback, against the sandbox."""

import http.server
import socket
import threading

import pytest
from payments_drain.adapters.hubspot import HubSpotClient, check_base_url
from payments_drain.core.batching import settle
from payments_drain.core.messages import parse_record

from local.hubspot_sandbox import SandboxConfig
from tests.twins import payment_body, sqs_record


def payments(n):
    return [parse_record(sqs_record(payment_body(f"k{i}", amount=f"{i}.50"), f"m{i}")) for i in range(n)]


def inputs(chunk):
    return [p.hubspot_input() for p in chunk]


def test_201_creates_every_input_and_is_settled_by_trace_id(hubspot_sandbox):
    client = HubSpotClient(hubspot_sandbox.base_url)
    chunk = payments(5)
    answer = client.write_batch(inputs(chunk), hubspot_sandbox.token)
    assert answer.status == 201
    assert answer.header("X-HubSpot-RateLimit-Remaining") is not None
    verdict = settle(chunk, answer)
    stored = {p["properties"]["hs_initial_amount"]: p["id"] for p in hubspot_sandbox.control.payments()}
    assert {verdict.outcomes[p.message_id].hubspot_id for p in chunk} == set(stored.values())
    assert all(
        verdict.outcomes[p.message_id].hubspot_id == stored[p.properties["hs_initial_amount"]] for p in chunk
    )


def test_text_beyond_ascii_reaches_hubspot_unchanged_and_its_answer_reads_back(hubspot_sandbox):
    """The body goes as UTF-8 JSON (pydantic_core), not \\u escapes, and the answer is read the same way."""
    comment = "Zahlung für Müller – Überweisung ✓ 支付 𝄞"
    body = payment_body("k-utf8", hs_internal_comment=comment)
    chunk = [parse_record(sqs_record(body, "m-utf8"))]
    answer = HubSpotClient(hubspot_sandbox.base_url).write_batch(inputs(chunk), hubspot_sandbox.token)
    assert answer.status == 201
    assert answer.body["results"][0]["properties"]["hs_internal_comment"] == comment
    (stored,) = hubspot_sandbox.control.payments()
    assert stored["properties"]["hs_internal_comment"] == comment
    assert settle(chunk, answer).outcomes["m-utf8"].hubspot_id == stored["id"]


@pytest.mark.parametrize(("version", "status"), [("v3", 207), ("2026-09", 201)])
def test_input_errors_name_their_inputs_in_each_versions_status(hubspot_sandbox, version, status):
    client = HubSpotClient(hubspot_sandbox.base_url, api_version=version)
    chunk = payments(3)
    bad = inputs(chunk)
    bad[1]["properties"] = {**bad[1]["properties"], "hs_latest_status": "paid"}  # only HubSpot knows
    answer = client.write_batch(bad, hubspot_sandbox.token)
    assert answer.status == status  # the date version: one success status, errors included
    verdict = settle(chunk, answer)
    assert verdict.outcomes["m1"].state.value == "rejected"
    assert verdict.outcomes["m1"].reason.category == "VALIDATION_ERROR"
    assert {verdict.outcomes[m].state.value for m in ("m0", "m2")} == {"created"}


def test_unknown_token_is_401_and_no_scope_is_403(hubspot_sandbox_factory):
    sandbox = hubspot_sandbox_factory(
        SandboxConfig(
            tokens={
                "ok": {"scopes": ["crm.objects.commercepayments.write"]},
                "readonly": {"scopes": ["crm.objects.commercepayments.read"]},
            }
        )
    )
    client = HubSpotClient(sandbox.base_url)
    assert client.write_batch(inputs(payments(1)), "nope").status == 401
    answer = client.write_batch(inputs(payments(1)), "readonly")
    assert answer.status == 403 and answer.body["category"] == "MISSING_SCOPES"


def test_stored_then_timed_out_reply_is_an_ambiguous_timeout(hubspot_sandbox):
    hubspot_sandbox.control.set_faults(script=["stored_then_timeout"], stored_then_timeout_delay_s=3)
    client = HubSpotClient(hubspot_sandbox.base_url, read_timeout_s=0.5)
    answer = client.write_batch(inputs(payments(2)), hubspot_sandbox.token)
    assert answer.status is None and answer.error == "timeout"
    assert settle(payments(2), answer).ambiguous
    assert len(hubspot_sandbox.control.payments()) == 2  # it was stored all the same


@pytest.mark.parametrize("fault", ["reset", "reset_after_store"])
def test_connection_reset_is_a_protocol_error(hubspot_sandbox, fault):
    hubspot_sandbox.control.set_faults(script=[fault])
    answer = HubSpotClient(hubspot_sandbox.base_url).write_batch(inputs(payments(1)), hubspot_sandbox.token)
    assert (answer.status, answer.error) == (None, "protocol")


def test_truncated_body_does_not_pass_as_an_answer(hubspot_sandbox):
    hubspot_sandbox.control.set_faults(script=["truncated"], truncate_mode="close")
    answer = HubSpotClient(hubspot_sandbox.base_url).write_batch(inputs(payments(2)), hubspot_sandbox.token)
    assert answer.error == "protocol" or answer.body is None


def test_nothing_listening_is_a_connect_error_which_is_safe_to_resend():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answer = HubSpotClient(f"http://127.0.0.1:{port}", connect_timeout_s=0.5).write_batch(
        inputs(payments(1)), "t"
    )
    assert (answer.status, answer.error) == (None, "connect")
    assert not settle(payments(1), answer).ambiguous


def test_connections_are_reused_across_calls(hubspot_sandbox):
    client = HubSpotClient(hubspot_sandbox.base_url)
    for _ in range(3):
        assert client.write_batch(inputs(payments(1)), hubspot_sandbox.token).status == 201
    pool = client.exchange.pool
    assert pool.num_connections == 1 and pool.num_requests == 3


@pytest.mark.parametrize(
    "url", ["http://api.hubapi.com", "ftp://127.0.0.1", "https://x.example/?q=1", "nohost"]
)
def test_https_is_required_except_to_loopback(url):
    with pytest.raises(ValueError):
        check_base_url(url)


@pytest.mark.parametrize(
    "url", ["https://api.hubapi.com/", "http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:5"]
)
def test_allowed_base_urls(url):
    assert not check_base_url(url).endswith("/")


def test_a_stored_answer_that_cannot_be_read_is_created_and_logged_with_its_correlation_id(
    hubspot_sandbox, log_lines
):
    import json

    hubspot_sandbox.control.set_faults(p_stored_then_unreadable=1.0)
    chunk = payments(2)
    answer = HubSpotClient(hubspot_sandbox.base_url).write_batch(inputs(chunk), hubspot_sandbox.token)
    assert answer.status == 201 and answer.body is None
    assert {o.state.value for o in settle(chunk, answer).outcomes.values()} == {"created"}
    (line,) = [json.loads(x) for x in log_lines() if "not as documented" in x]
    assert line["shape"] == "results cannot be read"
    assert line["hubspotCorrelationId"] == answer.header("X-HubSpot-Correlation-Id") is not None


def test_a_201_with_errors_from_the_2026_09_api_rejects_only_the_failed_input(hubspot_sandbox):
    hubspot_sandbox.control.set_faults(p_2xx_with_errors=1.0)
    chunk = payments(3)
    bad = inputs(chunk)
    bad[1]["properties"] = {**bad[1]["properties"], "hs_latest_status": "paid"}
    client = HubSpotClient(hubspot_sandbox.base_url, api_version="2026-09")
    answer = client.write_batch(bad, hubspot_sandbox.token)
    assert answer.status == 201 and answer.body["numErrors"] == 1
    verdict = settle(chunk, answer)
    states = {k: o.state.value for k, o in verdict.outcomes.items()}
    assert states == {"m0": "created", "m1": "rejected", "m2": "created"}
    assert len(hubspot_sandbox.control.payments()) == 2


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """Answers every POST with a 307 to another path, and remembers the paths asked for."""

    paths: list[str] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).paths.append(self.path)
        self.send_response(307)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_base_url_with_a_path_keeps_it_and_a_redirect_is_answered_not_followed():
    """The client's one connection pool asks for the base URL's path followed by the API's, and a
    3xx comes back as the answer (a POST that may be stored is never sent again by urllib3)."""
    _Redirecting.paths = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = HubSpotClient(f"http://127.0.0.1:{server.server_port}/proxy/")
        answer = client.write_batch(inputs(payments(1)), "t")
        read = client.read_batch(["1"], "t")
    finally:
        server.shutdown()
        server.server_close()
    assert (answer.status, answer.error, read.status) == (307, None, 307)
    assert _Redirecting.paths == [
        "/proxy/crm/v3/objects/commerce_payments/batch/create",
        "/proxy/crm/v3/objects/commerce_payments/batch/read",
    ]
