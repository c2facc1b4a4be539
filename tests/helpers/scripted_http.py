"""A local HTTP server whose answers a test scripts (status codes, bodies, cut-off bodies)
and that records what is POSTed to it (a webhook receiver)."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.helpers.tls import self_signed

TRICKLE_STEP_S = 0.1


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    announce: int | None = None
    """Content-Length to announce when it differs from the body (a cut-off download)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers (``Location`` of a redirect, ...)."""
    length: bool = True
    """Send Content-Length; without it the body ends when the connection closes."""
    trickle: float = 0.0
    """Seconds between pieces of the body (a source that trickles)."""
    head_trickle: float = 0.0
    """Seconds between header lines (a source that trickles before the body starts)."""
    piece: int = 1024


class ScriptedServer:
    """Serves, per path, the scripted answers in order; the last one repeats."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        """``tls_dir``: serve https with a self-signed certificate written there (``.cert``)."""
        self.script: dict[str, deque[Answer]] = defaultdict(deque)
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        """Each request's Authorization header (None without one), in order."""
        self.posted: list[tuple[str, bytes]] = []
        self.post_status = 200
        """What every POST is answered (a webhook that fails: 500, 403, ...)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                try:
                    self._answer(body=True)
                except OSError:  # the client gave up (a deadline): nothing to tell it
                    self.close_connection = True

            def do_HEAD(self) -> None:
                try:
                    self._answer(body=False)
                except OSError:
                    self.close_connection = True

            def _answer(self, body: bool) -> None:
                server.requests.append(self.path)
                server.authorizations.append(self.headers.get("Authorization"))
                answers = server.script.get(self.path)
                answer = (
                    (answers.popleft() if len(answers) > 1 else answers[0])
                    if answers
                    else Answer(404)
                )
                length = answer.announce if answer.announce is not None else len(answer.body)
                lines = [f"HTTP/1.1 {answer.status} scripted"]
                lines += [f"{k}: {v}" for k, v in answer.headers.items()]
                if answer.length:
                    lines.append(f"Content-Length: {length}")
                else:
                    lines.append("Connection: close")
                for line in lines:
                    self.wfile.write(line.encode() + b"\r\n")
                    if answer.head_trickle:
                        self.wfile.flush()
                        time.sleep(answer.head_trickle)
                self.wfile.write(b"\r\n")
                if body:
                    step = answer.piece if answer.trickle else max(len(answer.body), 1)
                    for start in range(0, len(answer.body), step):
                        self.wfile.write(answer.body[start : start + step])
                        self.wfile.flush()
                        time.sleep(answer.trickle)
                if answer.announce is not None or not answer.length:
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
        self.cert: Path | None = None
        scheme = "http"
        if tls_dir is not None:
            self.cert, key = self_signed(tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
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
