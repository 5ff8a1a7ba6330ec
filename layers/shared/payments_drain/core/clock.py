"""The one source of time for the drain: wall time, a monotonic clock, and sleep.

Production reads the real clock. The simulation (``simulation/``) installs a virtual clock so
that the real orchestration runs through days of simulated time in seconds; nothing else may
replace it. Code of the drain asks this module for the time and never calls ``time`` directly
(a test checks), so that one switch moves every part of it onto the same clock.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def wall(self) -> float: ...  # epoch seconds

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


_clock: Clock = RealClock()


def install(clock: Clock) -> Clock:
    """Use ``clock`` from now on; returns the one it replaces (the simulation puts it back)."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def wall() -> float:
    return _clock.wall()


def wall_ms() -> int:
    return round(_clock.wall() * 1000)


def monotonic() -> float:
    return _clock.monotonic()


def sleep(seconds: float) -> None:
    _clock.sleep(seconds)


def as_utc(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC (as every reportedAt is): replay's and reconcile's ranges."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value
