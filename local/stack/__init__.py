"""The local stack: the payments drain end to end on one machine, no Docker, no network.

- :mod:`local.stack.aws`: moto server lifecycle and the template's resources in it;
- :mod:`local.stack.moto_launcher` / :mod:`local.stack.moto_patch`: moto's server with a pinned speed-up;
- :mod:`local.stack.template`: template.yaml as CloudFormation/SAM reads it;
- :mod:`local.stack.esm`: Lambda's SQS event-source mapping, with subprocess containers;
- :mod:`local.stack.stack`: :class:`LocalStack`, all of it together (``python -m local.stack run``).

See docs/local.md.
"""

from .stack import LocalStack

__all__ = ["LocalStack"]
