"""The demo target: a tiny HTTP server the demo services check, so a fresh `make run` shows
up, degraded, flapping and down services without reaching the internet.

    python -m noc.demo_target --port 8001

Standard library only, and no Django: `make run` starts it as a child process.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_SECONDS = 1.5
FLAP_PERIOD_SECONDS = 120

Reply = tuple[int, dict]


def flapping_is_up(moment: float) -> bool:
    """Up for two minutes, down for two, by wall clock (shared with backfill_demo's history)."""
    return int(moment // FLAP_PERIOD_SECONDS) % 2 == 0


def healthy() -> Reply:
    return 200, {"status": "ok"}


def slow() -> Reply:
    time.sleep(SLOW_SECONDS)
    return 200, {"status": "ok", "slept_seconds": SLOW_SECONDS}


def flapping() -> Reply:
    if flapping_is_up(time.time()):
        return 200, {"status": "ok"}
    return 503, {"status": "unavailable", "reason": "flapping: down for two minutes"}


def down() -> Reply:
    return 503, {"status": "unavailable"}


def version() -> Reply:
    return 200, {"status": "ok", "version": "1.0"}


ROUTES: dict[str, Callable[[], Reply]] = {
    "/healthy": healthy,
    "/slow": slow,
    "/flapping": flapping,
    "/down": down,
    "/json": version,
}


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "noc-demo-target/1"

    def do_GET(self) -> None:
        self._reply(include_body=True)

    def do_HEAD(self) -> None:
        self._reply(include_body=False)

    def _reply(self, *, include_body: bool) -> None:
        route = ROUTES.get(self.path.split("?", 1)[0].rstrip("/") or "/")
        status, payload = route() if route else (404, {"error": "not found", "routes": [*ROUTES]})
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if include_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # checks hit it every few seconds; the web process already logs the interesting part


class Server(ThreadingHTTPServer):
    """A threading HTTP server whose listen queue holds a burst of connections.

    socketserver listens with a backlog of 5: a worker starting 20 checks at once (its first
    batch after an outage, say) overflows it, the kernel drops the SYNs beyond it, and the
    client sends them again only 1 s later, then 3 s: a healthy target timing out checks."""

    daemon_threads = True  # a slow request never holds up shutdown
    request_queue_size = socket.SOMAXCONN  # the kernel caps it (net.core.somaxconn)


def make_server(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A bound server, not yet serving (port 0 picks a free port: see `server_address`)."""
    return Server((host, port), DemoHandler)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="demo-target", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        server = make_server(args.host, args.port)
    except OSError as exc:
        # The demo target is a nicety: exiting would make `make run` stop everything, so stay
        # idle and let the demo services report whatever answers on that port.
        print(f"demo target: cannot listen on {args.host}:{args.port} ({exc}); set NOC_DEMO_PORT")
        sys.stdout.flush()
        _wait_for_signal()
        return 0
    print(f"demo target: listening on http://{args.host}:{server.server_address[1]}/")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _wait_for_signal() -> None:
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
