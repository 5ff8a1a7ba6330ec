"""The local stack: the payments drain end to end on one machine, no Docker, no AWS account.

Each module stands in for one real system (its first line says which); see docs/local.md.
``LocalStack`` (:mod:`local.stack.stack`) puts them together: ``python -m local.stack run``.
"""


def __getattr__(name: str):
    # Imported on first use, so that ``python -m local.stack.<module>`` runs one module alone.
    if name == "LocalStack":
        from .stack import LocalStack

        return LocalStack
    raise AttributeError(name)


__all__ = ["LocalStack"]
