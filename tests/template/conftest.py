"""Fixtures for the template tests (helpers live in cfn_template.py, a name no other test folder uses)."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_template import Evaluator, load_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def parameters(template: dict[str, Any]) -> dict[str, Any]:
    return template["Parameters"]


@pytest.fixture(scope="session")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    return resources["DrainFunction"]["Properties"]


@pytest.fixture(scope="session")
def queue_event(resources: dict[str, Any]) -> dict[str, Any]:
    return resources["PaymentsQueueEventSource"]


@pytest.fixture()
def evaluate(template: dict[str, Any]):
    """evaluate(node, **parameter_values): what CloudFormation makes of node for those parameters."""

    def _evaluate(node: Any, **overrides: Any) -> Any:
        return Evaluator(template, **overrides).value(node)

    return _evaluate


@pytest.fixture()
def evaluator(template: dict[str, Any]):
    return lambda **overrides: Evaluator(template, **overrides)
