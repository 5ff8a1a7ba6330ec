"""The function's environment as the local stack deploys template.yaml, for tests of the real handler."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from local.stack.aws import create_resources
from local.stack.template import Template
from tests.twins import CANARY_TOKEN

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deploy(aws_env, dynamodb_endpoint, monkeypatch):
    """deploy(hubspot_base_url, parameters=template overrides, **create_resources options): the
    template's resources on moto and
    DynamoDB Local, and the drain function's environment set in this process; (resources, environment)."""

    def _deploy(base_url: str, hubspot_token: str = CANARY_TOKEN, parameters: dict | None = None, **options):
        template = Template(
            ROOT / "template.yaml",
            {"HubSpotBaseUrl": base_url, **(parameters or {})},
            stack_name=f"t{uuid.uuid4().hex[:8]}",
        )
        resources = create_resources(
            template, aws_env, dynamodb_endpoint=dynamodb_endpoint, hubspot_token=hubspot_token, **options
        )
        environment = template.function("DrainFunction", resources.physical).environment
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        return resources, environment

    return _deploy
