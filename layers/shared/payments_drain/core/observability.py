"""Logger, metrics and tracer, created once per container (service and namespace from the
Powertools environment variables)."""

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()

F = TypeVar("F", bound=Callable[..., Any])


def traced(**options: Any) -> Callable[[F], F]:
    """Powertools' ``tracer.capture_method(**options)`` while tracing is on; the method itself
    while it is off (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda: Powertools' own rule, read
    when the tracer was built, at import). Written by hand because Powertools' decorator does not
    look at ``disabled``: it still opens a dummy subsegment per call, ~75 µs of CPU, once per
    HubSpot call and token read (docs/performance.md, figure a). While tracing is off, the lines
    Powertools' decorator wrote through its own library logger go too ("Calling method", and the
    traceback of each exception a method raises; the drain logs the failures it acts on in its own
    words, e.g. a ledger write given up, not each attempt retried)."""

    def decorate(method: F) -> F:
        return method if tracer.disabled else tracer.capture_method(**options)(method)

    return decorate
