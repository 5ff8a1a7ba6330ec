"""Prepare the HubSpot account for the drain, idempotently: run it before the first deploy.

    python -m payments_drain.tools.setup_hubspot [--property NAME] [--group NAME] [--base-url URL]
                                           [--secret-id ID]

1. Scopes. A service key (what an account creates today) or an app's static token: HubSpot has no
   route that lists their scopes, so the drain's write scope is checked by a batch/create with no
   inputs, which writes nothing (403 MISSING_SCOPES: missing; any other answer: granted). A legacy
   private app's token: its scopes come from the private-app token-info route. Either way HubSpot's
   403 on the calls below names a scope this setup lacks.
2. The property group (default ``payments_drain``): read, created when missing.
3. The unique-value property holding the paymentKey (default ``payments_drain_key``): read, created
   when missing (type string, field text, hasUniqueValue true). One that exists without unique values
   cannot be made unique: choose another name.

A second run finds everything and creates nothing. One line per step on stdout; exit code 0 when the
property is ready and no needed scope is missing, 1 otherwise, 2 for a command-line mistake.
The token comes from ``HUBSPOT_TOKEN``, or else from the Secrets Manager secret ``--secret-id``
(``HUBSPOT_TOKEN_SECRET_ID``), read as the function reads it. It is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from payments_drain.adapters.hubspot import BASE_URL, PATHS, check_base_url
from payments_drain.adapters.token import TokenUnavailable, cli_token
from payments_drain.orchestration.config import DEFAULT_PROPERTY

OBJECT_TYPE = "commerce_payments"
PROPERTIES = f"/crm/v3/properties/{OBJECT_TYPE}"
TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"
DRAIN_SCOPES = ("crm.objects.commercepayments.write",)  # batch/create, batch/upsert and batch/read
PROBE = PATHS["v3", "create"]  # a create with no inputs: past the scope check, refused, nothing written
SETUP_SCOPES = ("crm.schemas.commercepayments.write",)  # creating the group and the property
NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")  # the template's AllowedPattern for HubSpotUniqueProperty


class SetupError(Exception):
    """A step that cannot go on: the message is the report's last line."""


class Admin:
    """The few HubSpot calls setup makes, over urllib3: explicit timeouts, no retries, TLS verified."""

    def __init__(self, base_url: str, token: str, connect_s: float = 3.05, read_s: float = 15.0) -> None:
        self.base_url = check_base_url(base_url)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._token = token
        self.pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED", retries=False, timeout=urllib3.Timeout(connect=connect_s, read=read_s)
        )

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        try:
            response = self.pool.request(method, self.base_url + path, body=data, headers=self._headers)
        except HTTPError as error:
            raise SetupError(f"{method} {path}: no answer from HubSpot ({type(error).__name__})") from None
        try:
            return response.status, json.loads(response.data) if response.data else None
        except ValueError:
            return response.status, None

    def token_scopes(self) -> tuple[int, list[str] | None]:
        status, body = self.call("POST", TOKEN_INFO, {"tokenKey": self._token})
        scopes = body.get("scopes") if status == 200 and isinstance(body, dict) else None
        return status, [str(s) for s in scopes] if isinstance(scopes, list) else None


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    missing_scopes: set[str] = field(default_factory=set)
    ready: bool = False

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


def setup(admin: Admin, property_name: str, group_name: str, report: Report) -> Report:
    report.say(f"HubSpot {admin.base_url}, object type {OBJECT_TYPE}")
    try:
        check_scopes(admin, report)
        ensure_group(admin, group_name, report)
        ensure_property(admin, property_name, group_name, report)
    except SetupError as error:
        report.say(f"stopped: {error}")
        return report
    if report.missing_scopes & set(DRAIN_SCOPES):
        report.say(
            "not ready: the token lacks a scope the drain needs (add it to the service key, or the legacy "
            "private app, then run again)"
        )
    elif report.ready:
        report.say(f"ready: deploy with HubSpotUniqueProperty={property_name} (HUBSPOT_UNIQUE_PROPERTY)")
    return report


def check_scopes(admin: Admin, report: Report) -> None:
    status, scopes = admin.token_scopes()
    if scopes is None:
        report.say(
            f"token: a service key or an app's static token (the private-app token-info route answered "
            f"{status}); its scopes are checked by a call that writes nothing"
        )
        probe_scopes(admin, report)
        return
    report.say("token: a legacy private app's; its scopes from HubSpot's token-info route")
    for needed, why in ((DRAIN_SCOPES, "the drain needs it"), (SETUP_SCOPES, "this setup needs it")):
        for scope in needed:
            if scope in scopes:
                report.say(f"scope {scope}: granted")
            else:
                report.missing_scopes.add(scope)
                report.say(f"scope {scope}: MISSING ({why})")


def probe_scopes(admin: Admin, report: Report) -> None:
    """The drain's write scope, by a batch/create with no inputs: HubSpot checks the scope first
    (403 MISSING_SCOPES) and refuses the empty body after it; nothing can be written."""
    status, body = admin.call("POST", PROBE, {"inputs": []})
    if status == 401:
        raise SetupError(_refusal("checking the token", status, body, report))
    for scope in DRAIN_SCOPES:
        if status == 403:
            report.missing_scopes.add(scope)
            report.say(f"scope {scope}: MISSING (the drain needs it)")
        else:
            report.say(
                f"scope {scope}: granted (HubSpot let a batch/create with no inputs past its scope check)"
            )


def ensure_group(admin: Admin, name: str, report: Report) -> None:
    status, body = admin.call("GET", f"{PROPERTIES}/groups/{name}")
    if status == 200:
        report.say(f"group {name}: found")
        return
    if status != 404:
        raise SetupError(_refusal("reading the property group", status, body, report))
    status, body = admin.call("POST", f"{PROPERTIES}/groups", {"name": name, "label": "Payments drain"})
    if status not in (200, 201):
        raise SetupError(_refusal("creating the property group", status, body, report))
    report.say(f"group {name}: created")


def ensure_property(admin: Admin, name: str, group: str, report: Report) -> None:
    status, body = admin.call("GET", f"{PROPERTIES}/{name}")
    if status == 200 and isinstance(body, dict):
        if body.get("hasUniqueValue") is not True:
            raise SetupError(
                f"property {name} exists without unique values, and HubSpot cannot make an existing "
                "property unique: run again with another --property name"
            )
        if body.get("type") != "string":
            raise SetupError(
                f"property {name} has unique values but type {body.get('type')!r}, not string: "
                "run again with another --property name"
            )
        report.say(f"property {name}: found (unique values, type string, group {body.get('groupName')})")
        report.ready = True
        return
    if status != 404:
        raise SetupError(_refusal("reading the property", status, body, report))
    definition = {
        "name": name,
        "label": "Payments drain key",
        "type": "string",
        "fieldType": "text",
        "groupName": group,
        "hasUniqueValue": True,
        "description": "The producer's paymentKey, set by the payments drain: HubSpot refuses a second "
        "payment with the same value.",
    }
    status, body = admin.call("POST", PROPERTIES, definition)
    if status not in (200, 201):
        raise SetupError(_refusal("creating the property", status, body, report))
    report.say(f"property {name}: created (unique values, type string, group {group})")
    report.ready = True


def _refusal(doing: str, status: int, body: Any, report: Report) -> str:
    """What HubSpot said, with the scopes a 403 names (its message, never our token)."""
    body = body if isinstance(body, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), str) else f"HTTP {status}"
    if status == 403:
        scopes = _required_scopes(body)
        report.missing_scopes.update(scopes)
        if scopes:
            return f"{doing}: HubSpot answered 403, missing scope {', '.join(scopes)}"
    return f"{doing}: HubSpot answered {status}: {message[:300]}"


def _required_scopes(body: dict[str, Any]) -> list[str]:
    """From errors[].context.requiredGranularScopes, or the older form "{missingScopes=[a, b]}"."""
    found: list[str] = []
    for error in body.get("errors") or []:
        context = error.get("context") if isinstance(error, dict) else None
        if isinstance(context, dict) and isinstance(context.get("requiredGranularScopes"), list):
            found += [str(s) for s in context["requiredGranularScopes"]]
        elif isinstance(context, str) and (match := re.search(r"missingScopes=\[([^\]]*)\]", context)):
            found += [s.strip() for s in match.group(1).split(",") if s.strip()]
    return found


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2 (argparse would add the usage)
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m payments_drain.tools.setup_hubspot",
        description="Create the HubSpot property group and unique-value property the drain needs, "
        "and check the token's scopes. Safe to run again.",
    )
    p.add_argument(
        "--property",
        default=os.environ.get("HUBSPOT_UNIQUE_PROPERTY") or DEFAULT_PROPERTY,
        help=f"internal name of the unique-value property (default HUBSPOT_UNIQUE_PROPERTY or {DEFAULT_PROPERTY})",
    )
    p.add_argument("--group", default="payments_drain", help="its property group (default payments_drain)")
    p.add_argument(
        "--base-url",
        default=os.environ.get("HUBSPOT_BASE_URL") or BASE_URL,
        help=f"HubSpot API base URL (default HUBSPOT_BASE_URL or {BASE_URL})",
    )
    p.add_argument(
        "--secret-id",
        default=os.environ.get("HUBSPOT_TOKEN_SECRET_ID"),
        help="Secrets Manager secret holding the token, when HUBSPOT_TOKEN is not set "
        "(default HUBSPOT_TOKEN_SECRET_ID)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    for option, value in (("--property", args.property), ("--group", args.group)):
        if not NAME.match(value):
            p.error(
                f"{option} must be a lower-case letter, then lower case, digits, underscores (100 at most)"
            )
    try:
        base_url = check_base_url(args.base_url)
    except ValueError as error:
        p.error(f"--base-url {error}")
    try:
        token = cli_token(os.environ.get("HUBSPOT_TOKEN"), args.secret_id)
    except TokenUnavailable as error:
        print(f"setup_hubspot: {error}", file=sys.stderr)
        return 1
    if token is None:
        p.error("set HUBSPOT_TOKEN, or --secret-id (HUBSPOT_TOKEN_SECRET_ID) naming the token's secret")
    report = setup(Admin(base_url, token), args.property, args.group, Report())
    return 0 if report.ready and not report.missing_scopes & set(DRAIN_SCOPES) else 1


if __name__ == "__main__":
    sys.exit(main())
