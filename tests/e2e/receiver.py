"""A webhook receiver on 127.0.0.1 for the tests: answers from a script, records every call.

    with Receiver(["500", "timeout", "200"]) as receiver: ...

Each call takes the next answer ("200", "500", or "timeout": no answer until the test ends
or `hold` seconds pass); past the script's end it answers 200. `calls` holds every request
(time, headers, body) in arrival order.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    time: float
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, script: list[str] | None = None, hold: float = 10.0) -> None:
        self.script = list(script or [])
        self.hold = hold
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.calls.append(Call(time.time(), dict(self.headers.items()), body))
                    answer = receiver.script.pop(0) if receiver.script else "200"
                if answer == "timeout":
                    receiver.closing.wait(receiver.hold)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)
