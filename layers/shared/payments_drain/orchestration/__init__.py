"""One invocation's flow: configuration, the drain, the send loop, the sender, the pacing, the
ledger's session, the reports' writer and the retries' holds, built from ``core`` and ``adapters``.
The Lambda handlers import this."""
