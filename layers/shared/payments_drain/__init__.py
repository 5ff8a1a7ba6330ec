"""The payments drain: SQS payment messages into HubSpot commerce_payments batch calls.

Four folders, each a layer that may import only itself and the layers above it in this list
(``tests/unit/test_layout.py`` fails when an import crosses the order):

- ``core``: the rules, pure (parse a message, build the calls, read HubSpot's answers, plan a
  hold, the table of AWS and HubSpot limits, the clock every other part reads).
- ``adapters``: one per outside system (HubSpot, the ledger, the rate slots, the failure queue,
  the token, the queue's visibility, SendMessageBatch), built on the core.
- ``orchestration``: one invocation's flow (configuration, the drain, the send loop, the sender,
  the pacing, the ledger's session, the reports' writer, the retries' holds), from the core and
  the adapters.
- ``tools``: the operator commands (producer, replay, reconcile, setup-hubspot); nothing of ours
  imports them.
"""
