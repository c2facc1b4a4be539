"""A local HTTP server whose answers a test scripts (status codes, bodies, cut-off bodies)
and that records what is POSTed to it (a webhook receiver)."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
        self.post_status = 200
        """What every POST is answered (a webhook that fails: 500, 403, ...)."""
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
                self.send_response(server.post_status)
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
