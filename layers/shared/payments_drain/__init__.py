"""The payments drain: SQS payment messages into HubSpot commerce_payments batch-create calls.

Pure core: ``messages`` (parse), ``batching`` (chunks, settle answers, build the response).
Adapters, one per outside system: ``hubspot``, ``token``, ``ledger``, ``reports``.
Orchestration: ``drain``. Wiring for Lambda: ``config`` and ``observability``.
"""
