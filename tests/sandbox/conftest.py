"""Contract tests of the HubSpot sandbox, always over real HTTP.

The fixtures are imported (not declared with ``pytest_plugins``, which pytest only honours in the
top-level conftest) so this folder works both alone and as part of the whole suite."""

from __future__ import annotations

import pytest

from local.hubspot_sandbox.pytest_plugin import (  # noqa: F401  (fixtures)
    hubspot_sandbox,
    hubspot_sandbox_factory,
    hubspot_sandbox_process,
)

from sandbox_http import Api


@pytest.fixture
def api(hubspot_sandbox) -> Api:  # noqa: F811
    return Api(hubspot_sandbox.base_url)


@pytest.fixture
def control(hubspot_sandbox):  # noqa: F811
    return hubspot_sandbox.control
