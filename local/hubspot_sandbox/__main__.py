"""``python -m local.hubspot_sandbox [--port 0] [--token TOKEN] [--config-json JSON]``

Prints exactly one line, the base URL, once listening; serves until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys

from .config import ALL_SCOPES, SandboxConfig
from .server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.hubspot_sandbox", description="Local HubSpot sandbox"
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help="a token with the commercepayments write and read scopes, objects and schemas (repeatable); "
        "replaces the default 'sandbox-token' unless --config-json names tokens",
    )
    parser.add_argument("--config-json", default=None, help="SandboxConfig as JSON (see docs/sandbox.md)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    if args.config_json:
        config = SandboxConfig.from_json(args.config_json)
        tokens = dict(config.tokens)
    else:
        config = SandboxConfig()
        tokens = {} if args.token else dict(config.tokens)
    for token in args.token:
        tokens[token] = {"scopes": list(ALL_SCOPES), "expired": False}
    config.tokens = tokens

    server = SandboxServer(config, port=args.port, verbose=args.verbose)

    def _stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(server.base_url, flush=True)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.httpd.stopping.set()
        server.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
