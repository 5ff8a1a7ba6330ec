"""The faults as the drain's HTTP library (urllib3, retries off) sees them."""

from __future__ import annotations

import json

import pytest
import urllib3
from sandbox_http import CREATE, TOKEN, batch
from urllib3.exceptions import ProtocolError, ReadTimeoutError


@pytest.fixture
def post(hubspot_sandbox):
    pool = urllib3.PoolManager(retries=False)
    url = hubspot_sandbox.base_url + CREATE

    def send(read_timeout: float = 5.0):
        return pool.request(
            "POST",
            url,
            body=json.dumps({"inputs": batch(2)}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            timeout=urllib3.Timeout(connect=2, read=read_timeout),
        )

    yield send
    pool.clear()


@pytest.mark.parametrize("fault", ["reset", "reset_after_store"])
def test_reset_is_a_protocol_error(post, control, fault):
    control.set_faults(script=[fault])
    with pytest.raises(ProtocolError):
        post()
    assert len(control.payments()) == (2 if fault == "reset_after_store" else 0)


def test_stored_then_timeout_is_a_read_timeout(post, control):
    control.set_faults(script=["stored_then_timeout"], stored_then_timeout_delay_s=1.0)
    with pytest.raises(ReadTimeoutError):
        post(read_timeout=0.3)
    assert len(control.payments()) == 2


def test_truncated_bodies(post, control):
    control.set_faults(script=["truncated"])
    reply = post()
    assert reply.status == 201
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.data)
    control.set_faults(script=["truncated"], truncate_mode="close")
    with pytest.raises(ProtocolError):
        post()
    assert len(control.payments()) == 4


def test_keep_alive_pool_reuses_one_connection(post, hubspot_sandbox):
    for _ in range(5):
        assert post().status == 201
    # one TCP connection served all five: the pool never had to open a second one
    pool = urllib3.PoolManager(retries=False)
    host_pool = pool.connection_from_url(hubspot_sandbox.base_url)
    for _ in range(5):
        r = host_pool.request(
            "GET", "/crm/v3/objects/commerce_payments", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert r.status == 200
    assert host_pool.num_connections == 1
    assert host_pool.num_requests == 5
