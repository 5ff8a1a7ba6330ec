"""Bearer auth: missing, unknown, expired tokens and missing scopes."""

from __future__ import annotations

from sandbox_http import LIST, batch

from local.hubspot_sandbox import READ_SCOPE, WRITE_SCOPE


def _assert_error_body(reply, category):
    body = reply.json
    assert body["status"] == "error"
    assert body["category"] == category
    assert isinstance(body["message"], str) and body["message"]
    assert body["correlationId"] == reply.headers["X-HubSpot-Correlation-Id"]


def test_missing_token_is_401_invalid_authentication(api, control):
    reply = api.create(batch(1), token=None)
    assert reply.status == 401
    _assert_error_body(reply, "INVALID_AUTHENTICATION")
    assert api.get(LIST, token=None).status == 401
    assert control.payments() == []


def test_unknown_token_is_401_invalid_authentication(api, control):
    reply = api.create(batch(1), token="not-a-token")
    assert reply.status == 401
    _assert_error_body(reply, "INVALID_AUTHENTICATION")
    assert control.payments() == []


def test_expired_token_is_401_expired_authentication_until_renewed(api, control):
    control.set_config(tokens={"sandbox-token": {"expired": True}})
    reply = api.create(batch(1))
    assert reply.status == 401
    _assert_error_body(reply, "EXPIRED_AUTHENTICATION")
    assert control.payments() == []
    control.set_config(tokens={"sandbox-token": {"expired": False}})
    assert api.create(batch(1)).status == 201


def test_token_without_write_scope_is_403_missing_scopes(api, control):
    control.set_config(tokens={"reader": {"scopes": [READ_SCOPE]}})
    reply = api.create(batch(2), token="reader")
    assert reply.status == 403
    _assert_error_body(reply, "MISSING_SCOPES")
    assert reply.json["errors"][0]["context"]["requiredGranularScopes"] == [WRITE_SCOPE]
    assert control.payments() == []
    # the read scope is enough to list
    assert api.get(LIST, token="reader").status == 200


def test_tokens_can_be_added_and_removed_at_run_time(api, control):
    assert api.create(batch(1), token="late").status == 401
    control.set_config(tokens={"late": {"scopes": [WRITE_SCOPE]}})
    assert api.create(batch(1), token="late").status == 201
    control.set_config(tokens={"late": None})
    assert api.create(batch(1), token="late").status == 401
