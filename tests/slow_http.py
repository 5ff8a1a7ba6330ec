"""HTTP servers on loopback that misbehave in time, for deadline tests in real time.

- ``trickle``: answers a byte at a time, every ``interval_s`` (from the status line, or after the
  headers with ``headers_first``), for at most ``give_up_s``: a read timeout never trips.
- ``hang``: accepts and reads the request, then never answers, for at most ``give_up_s``.

Each runs in this process's threads; ``stop()`` (or leaving the ``with``) ends them and closes
every socket. ``give_up_s`` bounds a test whose client ignores deadlines: it then fails on its
assertion instead of hanging the suite.
"""

from __future__ import annotations

import socket
import threading
import time

ANSWER = b'{"status":"COMPLETE","results":[]}' + b" " * 100_000


class SlowServer:
    def __init__(
        self, mode: str, interval_s: float = 0.2, give_up_s: float = 10.0, headers_first: bool = False
    ) -> None:
        self.mode = mode
        self.interval_s = interval_s
        self.give_up_s = give_up_s
        self.headers_first = headers_first
        self.requests = 0
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.threads: list[threading.Thread] = []
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def __enter__(self) -> SlowServer:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.listener.close()
        for connection in self.connections:
            connection.close()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.connections.append(connection)
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.5)
        if not self._read_request(connection):
            return
        with self.lock:
            self.requests += 1
        until = time.monotonic() + self.give_up_s
        if self.mode == "hang":
            while not self.stopping.is_set() and time.monotonic() < until:
                self.stopping.wait(0.1)
            return
        head = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
            ANSWER
        )
        answer = head + ANSWER
        position = 0
        try:
            if self.headers_first:
                connection.sendall(head)
                position = len(head)
            while position < len(answer) and not self.stopping.is_set() and time.monotonic() < until:
                connection.sendall(answer[position : position + 1])
                position += 1
                self.stopping.wait(self.interval_s)
        except OSError:  # the client gave up and closed: what a deadline does
            pass

    def _read_request(self, connection: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                if self.stopping.is_set():
                    return False
                continue
            except OSError:
                return False
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk:
                return False
            body += chunk
        return True
