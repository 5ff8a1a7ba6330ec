"""A local HubSpot sandbox that behaves like HubSpot's commerce_payments batch API (see docs/sandbox.md)."""

from .config import (
    ALL_SCOPES,
    DEFAULT_TOKEN,
    FAULT_DEFAULTS,
    READ_SCOPE,
    SCHEMA_READ_SCOPE,
    SCHEMA_WRITE_SCOPE,
    WRITE_SCOPE,
    SandboxConfig,
)
from .control import SandboxControl, SandboxControlError
from .runner import RunningSandbox, run_sandbox, start_sandbox
from .server import SandboxServer

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_TOKEN",
    "FAULT_DEFAULTS",
    "READ_SCOPE",
    "SCHEMA_READ_SCOPE",
    "SCHEMA_WRITE_SCOPE",
    "WRITE_SCOPE",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxControl",
    "SandboxControlError",
    "SandboxServer",
    "run_sandbox",
    "start_sandbox",
]
