"""The operator commands (``python -m payments_drain.tools.NAME``): producer, replay, reconcile,
setup-hubspot. They import what they need; nothing of ours imports them."""
