"""What vulture (``make lint``) cannot see used, each with who uses it. vulture reads this file as
code that uses these names; it is never run. Anything else that no product code uses is dead: remove
it, or add it here with the reason. Decorated pydantic validators are in pyproject.toml's
[tool.vulture] ignore_decorators (pydantic calls them)."""

# Lambda calls each function's handler: template.yaml's Handler: app.lambda_handler.
_.lambda_handler

# pydantic reads a model's model_config (Settings, ReplayRequest, ReconcileRequest).
_.model_config

# Keys of pydantic-validated TypedDicts (core.messages): the message contract's field names.
_.associationCategory
_.associationTypeId
_.toObjectType
_.paymentKey

# urllib3 reads this: a pool's connection class (adapters.hubspot watches the connect time through it).
_.ConnectionCls

# core.clock.install: the simulation (simulation/world.py) and the contract tests put a virtual clock in.
_.install

# core.limits: docs/limits.md is generated from markdown_table (tests/unit/test_limits.py keeps them
# equal); every row below is in that table (LIMITS), and the simulation and the contract tests
# enforce or cite it, though no product code reads its value.
_.markdown_table
_.SQS_DEFAULT_RETENTION_S
_.SQS_DLQ_RETENTION
_.SQS_MAX_IN_FLIGHT
_.SQS_REDRIVE
_.LAMBDA_MAX_TIMEOUT_S
_.LAMBDA_SQS_SCALE_UP_PER_MIN
_.LAMBDA_UNZIPPED_PACKAGE_MB  # the build test (tests/tools/test_docs.py) holds the built layer under it
_.DDB_EXPRESSION_BYTES
_.DDB_ITEM_WCU_PER_S
_.DDB_ITEM_RCU_PER_S
_.DDB_CONDITIONAL_WRITE_COST
_.HUBSPOT_ASSOCIATION_READ_INPUTS
_.HUBSPOT_PER_10S_STARTER
_.HUBSPOT_PER_10S_LIMIT_INCREASE
_.HUBSPOT_PER_10S_PUBLIC_APP
_.HUBSPOT_DAILY_STARTER
_.HUBSPOT_DAILY_PROFESSIONAL
_.HUBSPOT_DAILY_ENTERPRISE
_.HUBSPOT_SERVICE_KEY_ROTATION
_.HUBSPOT_ERROR_SHARE
_.HUBSPOT_PROPERTY_CHARS
