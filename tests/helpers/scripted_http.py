"""A local HTTP server whose answers a test scripts (status codes, bodies, cut-off bodies)
and that records what is POSTed to it (a webhook receiver)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TRICKLE_STEP_S = 0.1


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    announce: int | None = None
    """Content-Length to announce when it differs from the body (a cut-off download)."""


class ScriptedServer:
    """Serves, per path, the scripted answers in order; the last one repeats."""

    def __init__(self) -> None:
        self.script: dict[str, deque[Answer]] = defaultdict(deque)
        self.requests: list[str] = []
        self.posted: list[tuple[str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                answers = server.script.get(self.path)
                answer = (
                    (answers.popleft() if len(answers) > 1 else answers[0])
                    if answers
                    else Answer(404)
                )
                self.send_response(answer.status)
                length = answer.announce if answer.announce is not None else len(answer.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(answer.body)
                if answer.announce is not None:
                    self.close_connection = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                server.posted.append((self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, *answers: Answer) -> None:
        self.script[path] = deque(answers)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TricklingFileServer:
    """Serves a folder laid out like the real source; paths in ``slow`` trickle their body.

    ``slow[path] = seconds`` sends that file in small pieces spread over ``seconds`` (a slow
    mirror), so a test can act while a task is mid-download. ``gets`` records each GET's path
    and when it started (time.monotonic()).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.slow: dict[str, float] = {}
        self.gets: list[tuple[str, float]] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                server.gets.append((self.path, time.monotonic()))
                super().do_GET()

            def copyfile(self, source: Any, outputfile: Any) -> None:
                seconds = server.slow.get(self.path)
                if not seconds:
                    super().copyfile(source, outputfile)
                    return
                data = source.read()
                steps = max(1, int(seconds / TRICKLE_STEP_S))
                piece = max(1, -(-len(data) // steps))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    for start in range(0, len(data), piece):
                        outputfile.write(data[start : start + piece])
                        outputfile.flush()
                        time.sleep(seconds / steps)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def started(self, path: str) -> bool:
        return any(p == path for p, _ in self.gets)

    def __enter__(self) -> TricklingFileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
