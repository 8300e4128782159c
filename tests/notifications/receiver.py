"""A local webhook receiver: an HTTP server on 127.0.0.1 (random port) in a thread that
checks every request with `notifications.signing.verify`, as an integrator's system would,
and records what it got. With an SSL context it speaks https and records the TLS server name
(SNI) each client asked for."""

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from notifications import signing


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """`secret`: set it once the subscription exists. `statuses`: the answers to give, in
    order (the last one repeats). `delay`: seconds to wait before answering. `reason`,
    `location`, `body`: the status line's reason phrase, a Location header and a body to
    answer with."""

    server: ThreadingHTTPServer
    secret: str | None = None
    statuses: list[int] = field(default_factory=lambda: [204])
    requests: list[Received] = field(default_factory=list)
    delay: float = 0.0
    reason: str | None = None
    location: str | None = None
    body: bytes = b""
    tls: bool = False
    server_names: list[str | None] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hooks/tracker"

    @property
    def valid_requests(self) -> list[Received]:
        return [r for r in self.requests if r.valid]

    def answer(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


def start_receiver(ssl_context: ssl.SSLContext | None = None) -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {key.lower(): value for key, value in self.headers.items()}
            valid = bool(receiver.secret) and signing.verify(receiver.secret, headers, body)
            receiver.requests.append(Received(self.path, headers, body, valid))
            time.sleep(receiver.delay)
            self.send_response(receiver.answer() if valid else 401, receiver.reason)
            if receiver.location:
                self.send_header("location", receiver.location)
            self.send_header("content-length", str(len(receiver.body)))
            self.end_headers()
            self.wfile.write(receiver.body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server=server, tls=ssl_context is not None)
    if ssl_context is not None:

        def remember_server_name(sock, server_name, context):
            receiver.server_names.append(server_name)

        ssl_context.sni_callback = remember_server_name
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def stop_receiver(receiver: Receiver) -> None:
    receiver.server.shutdown()
    receiver.server.server_close()
