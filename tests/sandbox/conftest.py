"""Contract tests of the HubSpot sandbox, always over real HTTP.

The fixtures (``hubspot_sandbox``, ``hubspot_sandbox_process``, ``hubspot_sandbox_factory``) come from
``local.hubspot_sandbox.pytest_plugin``. The top-level tests/conftest.py may already load it with
``pytest_plugins``; pytest refuses ``pytest_plugins`` in a nested conftest, so when it is not loaded yet
(this folder run on its own with a different top-level conftest) it is registered here."""

from __future__ import annotations

import pytest
from sandbox_http import Api

PLUGIN = "local.hubspot_sandbox.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture
def api(hubspot_sandbox) -> Api:
    return Api(hubspot_sandbox.base_url)


@pytest.fixture
def control(hubspot_sandbox):
    return hubspot_sandbox.control
