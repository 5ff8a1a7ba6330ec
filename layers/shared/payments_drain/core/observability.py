"""Logger, metrics and tracer, created once per container (service and namespace from the
Powertools environment variables)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()
