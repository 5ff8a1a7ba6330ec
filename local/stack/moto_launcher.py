"""Stands in for Amazon SQS and Secrets Manager: moto's own server, with the local stack's SQS speed-up.

    python -m local.stack.moto_launcher [--host 127.0.0.1] [--port 0] [--no-patch]

It is moto's own WSGI application (``DomainDispatcherApplication(create_backend_app)``) served by
werkzeug's threaded server, exactly as ``moto_server`` does; the only differences are that
:mod:`local.stack.moto_patch` is applied first, that ``--port 0`` picks a free port, and that
the bound address is printed as one line ``READY http://127.0.0.1:PORT`` on stdout once the
socket accepts connections (the parent waits for that line instead of polling).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.stack.moto_launcher")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    parser.add_argument("--no-patch", action="store_true", help="run stock moto (for comparisons)")
    args = parser.parse_args(argv)

    if not args.no_patch:
        from local.stack import moto_patch

        moto_patch.apply()

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto.server.main does
    server = make_server(args.host, args.port, app, threaded=True)
    server.daemon_threads = True  # a long poll in progress must not delay the stop
    server.block_on_close = False
    port = server.socket.getsockname()[1]
    os.environ["MOTO_PORT"] = str(port)

    def stop(signum, frame):  # noqa: ARG001
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    patched = "unpatched" if args.no_patch else "patched"
    print(f"READY http://{args.host}:{port} {patched}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
