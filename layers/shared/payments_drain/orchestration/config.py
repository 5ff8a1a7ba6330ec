"""Configuration: the function's environment, validated once at cold start.

The variable names are a public interface (docs/configuration.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from payments_drain.adapters.hubspot import BASE_URL, check_base_url
from payments_drain.core.holds import HOLD_BASE_S, QueueTimes
from payments_drain.core.limits import (
    DDB_TABLE_NAME,
    HUBSPOT_PER_10S_PROFESSIONAL,
    LAMBDA_SQS_BATCHING_WINDOW_S,
    SQS_MAX_RETENTION_S,
    SQS_MAX_VISIBILITY_S,
)
from payments_drain.core.outcomes import Wait

DEFAULT_PROPERTY = "payments_drain_key"  # template.yaml's HubSpotUniqueProperty default (the tools' too)


class ConfigurationError(Exception):
    pass


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    HUBSPOT_TOKEN_SECRET_ID: Annotated[str, Field(min_length=1)]
    FAILURE_QUEUE_URL: Annotated[str, Field(pattern=r"^https?://\S+$")]
    LEDGER_TABLE_NAME: Annotated[str, Field(pattern=f"^({DDB_TABLE_NAME})?$")]
    # The rate limit's slots shared by the containers (rate_slots); empty: one container, paced
    # by the headers (EVENT_SOURCE_MAX_CONCURRENCY must then be 1).
    RATE_SLOTS_TABLE_NAME: Annotated[str, Field(pattern=f"^({DDB_TABLE_NAME})?$")] = ""
    HUBSPOT_BASE_URL: str = BASE_URL
    HUBSPOT_API_VERSION: Literal["v3", "2026-09"] = "2026-09"
    HUBSPOT_UNIQUE_PROPERTY: Annotated[str, Field(pattern=r"^([a-z][a-z0-9_]{0,99})?$")] = ""
    HUBSPOT_WRITE_MODE: Literal["create", "upsert"] = "create"
    HUBSPOT_RATE_LIMIT_PER_10S: Annotated[int, Field(ge=1, le=10_000)] = HUBSPOT_PER_10S_PROFESSIONAL.value
    HUBSPOT_MAX_PARALLEL_CALLS: Annotated[int, Field(ge=1, le=32)] = 4
    EVENT_SOURCE_MAX_CONCURRENCY: Annotated[int, Field(ge=1, le=1000)] = 1
    HUBSPOT_CONNECT_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=30)] = 3.05
    HUBSPOT_READ_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=900)] = 15.0
    HUBSPOT_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=10)] = 3
    TOKEN_CACHE_SECONDS: Annotated[int, Field(ge=0, le=86_400)] = 300
    LEDGER_RETENTION_DAYS: Annotated[int, Field(ge=1, le=3650)] = 90
    TIME_MARGIN_MS: Annotated[int, Field(ge=0, le=60_000)] = 2_000
    # Retries that only wait for HubSpot are hidden on the queue for this long, doubled at each
    # delivery up to 16 times, clamped to what SQS accepts for that receive and to the message's
    # retention (holds.plan); 0 leaves them to the queue's visibility timeout. The defaults are
    # holds.HOLD_BASE_S (template.yaml's parameter defaults are held equal by tests/template).
    HUBSPOT_UNAVAILABLE_HOLD_SECONDS: Annotated[int, Field(ge=0, le=SQS_MAX_VISIBILITY_S.value)] = (
        HOLD_BASE_S[Wait.HUBSPOT_UNAVAILABLE]
    )
    DAILY_LIMIT_HOLD_SECONDS: Annotated[int, Field(ge=0, le=SQS_MAX_VISIBILITY_S.value)] = HOLD_BASE_S[
        Wait.DAILY_LIMIT
    ]
    # The payments queue and its event source, as the template sets them: holds.QueueTimes.
    QUEUE_VISIBILITY_TIMEOUT_SECONDS: Annotated[int, Field(ge=0, le=SQS_MAX_VISIBILITY_S.value)] = (
        QueueTimes().visibility_timeout_s
    )
    QUEUE_RETENTION_SECONDS: Annotated[int, Field(ge=60, le=SQS_MAX_RETENTION_S.value)] = (
        SQS_MAX_RETENTION_S.value
    )
    BATCHING_WINDOW_SECONDS: Annotated[int, Field(ge=0, le=LAMBDA_SQS_BATCHING_WINDOW_S.value)] = 0
    MAX_RECEIVE_COUNT: Annotated[int, Field(ge=0, le=1000)] = 5  # the redrive policy's; 0: unknown
    DAILY_LIMIT_PROBE_SECONDS: Annotated[int, Field(ge=1, le=86_400)] = 300

    @field_validator("HUBSPOT_BASE_URL")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @model_validator(mode="after")
    def _upsert_needs_the_unique_property(self) -> Settings:
        if self.HUBSPOT_WRITE_MODE == "upsert" and not self.HUBSPOT_UNIQUE_PROPERTY:
            raise ValueError(
                "HUBSPOT_WRITE_MODE upsert needs HUBSPOT_UNIQUE_PROPERTY (the property upsert finds payments by)"
            )
        return self

    @model_validator(mode="after")
    def _containers_share_the_limit_through_the_slots(self) -> Settings:
        if self.EVENT_SOURCE_MAX_CONCURRENCY > 1 and not self.RATE_SLOTS_TABLE_NAME:
            raise ValueError(
                "EVENT_SOURCE_MAX_CONCURRENCY above 1 needs RATE_SLOTS_TABLE_NAME (containers share "
                "HubSpot's rate limit through the rate slots table)"
            )
        return self

    @property
    def upsert(self) -> bool:
        return self.HUBSPOT_WRITE_MODE == "upsert"

    @property
    def queue_times(self) -> QueueTimes:
        return QueueTimes(
            self.QUEUE_VISIBILITY_TIMEOUT_SECONDS,
            self.QUEUE_RETENTION_SECONDS,
            self.BATCHING_WINDOW_SECONDS,
            self.MAX_RECEIVE_COUNT,
        )

    @property
    def ledger_enabled(self) -> bool:
        return bool(self.LEDGER_TABLE_NAME)

    @property
    def unique_property(self) -> str | None:
        return self.HUBSPOT_UNIQUE_PROPERTY or None


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from the environment; the error names every bad variable, never its value."""
    try:
        return Settings.model_validate(dict(environ))
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False, include_input=False):
            name = ".".join(str(p) for p in item["loc"])
            what = "is required but not set" if item["type"] == "missing" else item["msg"]
            problems.append(f"{name} {what}" if name else what.removeprefix("Value error, "))
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
