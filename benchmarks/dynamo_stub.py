"""A stand-in DynamoDB endpoint for the ledger's latency figure: ``python -m benchmarks.dynamo_stub --delay-ms 5``.

moto shares the machine's two cores with the handler and spends several milliseconds of its
own CPU per request, so latencies measured against it are moto's. This stub answers the calls
the ledger makes (BatchGetItem: nothing found; BatchExecuteStatement: every statement succeeded;
BatchWriteItem: all processed; anything else, such as PutItem: accepted) after ``--delay-ms``,
as DynamoDB would at that response time, from a thread per connection. The client side
(botocore: serialise, sign, send, parse) is the real one. Prints its URL on one line, then serves
until terminated.
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay_s = 0.0
    # Headers and body go out as separate writes; without TCP_NODELAY, Nagle's algorithm holds the
    # body until the client's delayed ACK (40 ms), which DynamoDB does not do.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        if operation == "BatchGetItem":
            answer = {
                "Responses": {table: [] for table in body.get("RequestItems", {})},
                "UnprocessedKeys": {},
            }
        elif operation == "BatchWriteItem":
            answer = {"UnprocessedItems": {}}
        elif operation == "BatchExecuteStatement":
            answer = {"Responses": [{} for _ in body.get("Statements", [])]}
        else:
            answer = {}
        if self.delay_s:
            time.sleep(self.delay_s)
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "stub")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=5.0)
    args = parser.parse_args()
    Handler.delay_s = args.delay_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
