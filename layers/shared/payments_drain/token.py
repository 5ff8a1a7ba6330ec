"""Adapter: the HubSpot token from Secrets Manager through Powertools Parameters.

Cached across invocations for ``max_age_s``; ``get(force=True)`` reads past the cache (after a
401, the token may have been rotated). The secret holds the bare token or ``{"token": "..."}``.
No message raised here ever contains the secret's value.
"""

from __future__ import annotations

import json

import boto3

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from payments_drain.observability import tracer

class TokenUnavailable(Exception):
    pass


class SecretToken:
    def __init__(self, secret_id: str, max_age_s: int = 300, provider: SecretsProvider | None = None) -> None:
        self.secret_id = secret_id
        self.max_age_s = max_age_s
        # A client from boto3's default session: Powertools' own would build a second session and
        # load botocore's models again at cold start.
        self.provider = provider or SecretsProvider(boto3_client=boto3.client("secretsmanager"))

    @tracer.capture_method(capture_response=False)
    def get(self, force: bool = False) -> str:
        try:
            value = self.provider.get(self.secret_id, max_age=self.max_age_s, force_fetch=force)
        except Exception as error:  # noqa: BLE001 - boto3/Powertools errors carry ids, never the value
            cause = error.__context__ or error  # Powertools re-raises boto3's error as GetParameterError
            code = getattr(cause, "response", {}).get("Error", {}).get("Code") or type(cause).__name__
            raise TokenUnavailable(f"cannot read the HubSpot token secret ({code})") from None
        return token_from_secret(value)


def token_from_secret(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = (value or "").strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("token") or "").strip()
        except (ValueError, AttributeError):
            raise TokenUnavailable("the token secret looks like JSON but cannot be parsed") from None
    if not text:
        raise TokenUnavailable("the token secret is empty or has no 'token' field")
    return text
