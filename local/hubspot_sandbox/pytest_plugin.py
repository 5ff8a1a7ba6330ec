"""pytest fixtures: ``pytest_plugins = ["local.hubspot_sandbox.pytest_plugin"]`` (in a top-level conftest),
or import the fixtures into a conftest.

- ``hubspot_sandbox_process`` (session): one sandbox subprocess for the whole session.
- ``hubspot_sandbox`` (function): that process, reset to its start configuration and empty state.
- ``hubspot_sandbox_factory`` (function): ``factory(config) -> RunningSandbox``, a dedicated subprocess
  per call, stopped by process id at the end of the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from .config import SandboxConfig
from .runner import RunningSandbox, run_sandbox


@pytest.fixture(scope="session")
def hubspot_sandbox_process() -> Iterator[RunningSandbox]:
    """One sandbox subprocess (default SandboxConfig) for the whole session, stopped by process id."""
    with run_sandbox(SandboxConfig()) as sandbox:
        yield sandbox


@pytest.fixture
def hubspot_sandbox(hubspot_sandbox_process: RunningSandbox) -> RunningSandbox:
    """The session's sandbox, reset before the test: no payments, zeroed counters and windows, the start
    configuration (tokens, limits, faults, seed) restored. Change it with ``.control.set_config/set_faults``."""
    hubspot_sandbox_process.control.reset(restore_config=True)
    return hubspot_sandbox_process


@pytest.fixture
def hubspot_sandbox_factory() -> Iterator[Callable[..., RunningSandbox]]:
    """``factory(config=None, **SandboxConfig fields) -> RunningSandbox``: a dedicated subprocess per call,
    stopped by process id when the test ends."""
    with contextlib.ExitStack() as stack:

        def start(config: SandboxConfig | None = None, **kwargs: object) -> RunningSandbox:
            return stack.enter_context(run_sandbox(config or SandboxConfig(**kwargs)))

        yield start
