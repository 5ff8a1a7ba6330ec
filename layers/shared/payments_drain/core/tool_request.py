"""Pure core: what the operator tools' requests (replay, reconcile) share.

Their field names are the CLI's flags and, in camelCase, the Lambda event's keys; an unknown key
is refused. ``since`` and ``until`` bound a time range: a time without a zone is UTC (as every
reportedAt is), and ``since`` comes before ``until``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from payments_drain.core.clock import as_utc


class ToolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @model_validator(mode="after")
    def _since_before_until(self) -> ToolRequest:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self
