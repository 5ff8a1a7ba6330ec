import io
import logging
import os

import pytest

# The function's Powertools settings, as template.yaml sets them, before anything imports them.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "payments-drain")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PaymentsDrain")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

pytest_plugins = ["local.hubspot_sandbox.pytest_plugin"]


@pytest.fixture
def log_lines():
    """Every line the drain's Powertools logger writes during the test, formatted as in Lambda."""
    from payments_drain.core.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield lambda: stream.getvalue().splitlines()
    logger.removeHandler(handler)


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto server process for the session (started and stopped by process id)."""
    from local.stack.aws import MotoServer

    with MotoServer() as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def dynamodb_endpoint():
    """One DynamoDB Local process for the session (fetched on first use, stopped by process id)."""
    from local.stack.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal() as server:
        yield server.endpoint


@pytest.fixture
def aws_env(moto_endpoint, dynamodb_endpoint, monkeypatch):
    """boto3 in this process talks to the moto server through AWS_ENDPOINT_URL and to DynamoDB
    Local through AWS_ENDPOINT_URL_DYNAMODB, as the function does in the local stack."""
    from local.stack.aws import aws_client_env

    for key, value in aws_client_env(moto_endpoint, "us-east-1", dynamodb_endpoint).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    return moto_endpoint
