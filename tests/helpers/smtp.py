"""A minimal local SMTP server with STARTTLS, for the notification tests."""

from __future__ import annotations


class StartTlsServer:
    """A minimal SMTP server offering STARTTLS with a given certificate; records logins.

    No SMTP server package is installed (aiosmtpd is not in the lock); this speaks just enough
    of the protocol for smtplib: EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def __init__(self, cert: str, key: str) -> None:
        import socket
        import ssl
        import threading

        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.logins: list[str] = []
        self.mails: list[bytes] = []
        self.mails_over_tls: list[bool] = []
        """Per mail, whether it came after STARTTLS."""
        self.offer_starttls = True
        """False: a relay without TLS (EHLO lists no STARTTLS, the verb is refused)."""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import ssl

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                self._session(conn)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def _session(self, conn) -> None:
        f = conn.makefile("rb")
        conn.sendall(b"220 localhost ESMTP\r\n")
        while line := f.readline():
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                over_tls = hasattr(conn, "version")
                extra = (
                    b"250 AUTH PLAIN" if over_tls or not self.offer_starttls else b"250 STARTTLS"
                )
                conn.sendall(b"250-localhost\r\n" + extra + b"\r\n")
            elif verb == b"STARTTLS" and not self.offer_starttls:
                conn.sendall(b"502 not offered\r\n")
            elif verb == b"STARTTLS":
                conn.sendall(b"220 go ahead\r\n")
                conn = self.tls.wrap_socket(conn, server_side=True)
                f = conn.makefile("rb")
            elif verb == b"AUTH":
                self.logins.append(line.decode().strip())
                conn.sendall(b"235 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                body = b""
                while (data := f.readline()) not in (b".\r\n", b""):
                    body += data
                self.mails.append(body)
                self.mails_over_tls.append(hasattr(conn, "version"))
                conn.sendall(b"250 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.sock.close()
