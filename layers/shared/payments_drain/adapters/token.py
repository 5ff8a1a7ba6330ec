"""Adapter: the HubSpot token from Secrets Manager through Powertools Parameters.

Cached across invocations for ``max_age_s``; ``get(force=True)`` reads past the cache (after a
401, the token may have been rotated). The secret holds the bare token or ``{"token": "..."}``:
a service key, a project-based app's static token or a legacy private app's token, all sent the
same way (``Authorization: Bearer``; docs/deploy.md, step 1). A token is printable ASCII without
whitespace (what an HTTP header can carry unchanged); anything else is a configuration error.
Every message raised here names the secret, never its value.
"""

from __future__ import annotations

import json
import re
import threading

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from payments_drain.adapters.aws_clients import client_config
from payments_drain.core import clock
from payments_drain.core.observability import traced

TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no whitespace


class TokenUnavailable(Exception):
    pass


# A read that failed is not tried again for this long: the invocation's other chunks, queued on
# the lock, then fail at once instead of each waiting out the same timeouts (a Secrets Manager that
# hangs took ~7 s a read: ten chunks one after another outlasted the function).
FAILED_READ_S = 10.0


class SecretToken:
    def __init__(self, secret_id: str, max_age_s: int = 300, provider: SecretsProvider | None = None) -> None:
        self.secret_id = secret_id
        self.max_age_s = max_age_s
        # Powertools' cache has no lock: the chunks of a cold start would each read the secret.
        self._reading = threading.Lock()
        self._failed: tuple[float, str] | None = None  # when the last read failed, and why
        # A client from boto3's default session: Powertools' own would build a second session and
        # load botocore's models again at cold start.
        self.provider = provider or SecretsProvider(
            boto3_client=boto3.client("secretsmanager", config=client_config())
        )

    @traced(capture_response=False, capture_error=False)
    def get(self, force: bool = False) -> str:
        with self._reading:  # the first thread reads, the others then find it in the cache
            if self._failed and clock.monotonic() - self._failed[0] < FAILED_READ_S:
                raise TokenUnavailable(self._failed[1])
            try:
                value = self.provider.get(self.secret_id, max_age=self.max_age_s, force_fetch=force)
            except Exception as error:  # noqa: BLE001 - boto3/Powertools errors carry ids, never the value
                cause = error.__context__ or error  # Powertools re-raises boto3's error as GetParameterError
                response = getattr(cause, "response", None) or {}  # None on a timeout
                code = response.get("Error", {}).get("Code") or type(cause).__name__
                self._failed = (
                    clock.monotonic(),
                    f"cannot read the HubSpot token secret {self.secret_id} ({code})",
                )
                raise TokenUnavailable(self._failed[1]) from None
            self._failed = None
        return token_from_secret(value, self.secret_id)


def token_from_secret(value: str | bytes | None, secret_id: str | None = None) -> str:
    """The token in a secret's value (or in HUBSPOT_TOKEN for the setup command); a TokenUnavailable
    naming ``secret_id`` when there is none, never the value."""
    source = f"the token secret {secret_id}" if secret_id else "the token"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = (value or "").strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("token") or "").strip()
        except (ValueError, AttributeError):
            raise TokenUnavailable(f"{source} looks like JSON but cannot be parsed") from None
    if not text:
        raise TokenUnavailable(f"{source} is empty or has no 'token' field")
    if not TOKEN.fullmatch(text):
        raise TokenUnavailable(
            f"{source} holds characters a token cannot have "
            "(only printable ASCII without spaces or line breaks)"
        )
    return text


def cli_token(from_env: str | None, secret_id: str | None) -> str | None:
    """A command's token: ``HUBSPOT_TOKEN`` when set, else the secret ``secret_id`` read as the
    function reads it; None when neither is given (the command's usage error)."""
    if from_env and from_env.strip():
        return token_from_secret(from_env, "HUBSPOT_TOKEN")
    if secret_id:
        return SecretToken(secret_id, max_age_s=0).get()
    return None
