"""One invocation's flow: configuration, the drain, the sender, the pacing, the ledger's session and
the reports' writer, built from ``core`` and ``adapters``. The Lambda handlers import this."""
