"""The simulated week: the real orchestration under a virtual clock, with SQS, Lambda's event
source, DynamoDB and HubSpot simulated by rules from ``payments_drain.core.limits`` and held to the
real emulators by contract tests (tests/contract). ``make simulate`` runs many seeds."""
