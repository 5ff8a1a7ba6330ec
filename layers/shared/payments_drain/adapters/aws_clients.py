"""botocore settings for every AWS client of the function (Secrets Manager, DynamoDB, SQS).

botocore's defaults (60 s to connect, 60 s per read, legacy retries) let one hung call outlive a
function whose timeout is 60 s. These bound a call, retries included, to a few seconds, well inside
the invocation's time budget and its margin (TIME_MARGIN_MS).
"""

from __future__ import annotations

from botocore.config import Config

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
MAX_ATTEMPTS = 2  # botocore "standard" mode: the first try and one retry, with backoff


def client_config(**overrides) -> Config:
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        **overrides,
    )
