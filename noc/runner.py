"""`make run`: prepare the database, then run web, the two workers and beat until Ctrl-C or
SIGTERM."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from django.conf import settings
from django.core.management import call_command

from noc.celery import JOB_QUEUES, SCHEDULED_QUEUES
from noc.embedded import var_dir

STOP_GRACE_SECONDS = 20
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the runner dies, even by SIGKILL, so a killed
    runner never leaves web, worker or beat behind (Linux prctl; elsewhere a no-op)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class AlreadyRunning(Exception):
    pass


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0  # monotonic
    quick_deaths: int = 0  # deaths in a row, each within HEALTHY_AFTER of its start
    restart_at: float | None = None  # monotonic time of a restart that is due


@dataclass(frozen=True)
class RestartPolicy:
    """How the runner treats a child that dies, as a process manager would: it is restarted
    after a backoff that doubles with each quick death in a row (1 s, 2 s, 4 s … up to
    `backoff_max`), reset once the child has lived `healthy_after`; `max_quick_deaths` quick
    deaths in a row stop the stack, since restarting it again would not help."""

    backoff_first: float = 1.0
    backoff_max: float = 30.0
    healthy_after: float = 60.0
    max_quick_deaths: int = 5

    def backoff(self, quick_deaths: int) -> float:
        return min(self.backoff_first * 2 ** max(quick_deaths - 1, 0), self.backoff_max)


@dataclass
class Runner:
    host: str
    port: int
    out: TextIO = sys.stdout
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    # --- single instance ---------------------------------------------------------------

    def acquire_lock(self) -> None:
        path = var_dir() / "run.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(path, "a+")  # noqa: SIM115 - held for the runner's lifetime
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.seek(0)
            owner = self._lock.read().strip() or "another process"
            raise AlreadyRunning(
                f"NOC is already running from this directory ({owner}). "
                "Stop it with Ctrl-C in its terminal, or use the running instance."
            ) from exc
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"pid {os.getpid()}, http://{self.host}:{self.port}/")
        self._lock.flush()

    def check_port_free(self) -> None:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                raise AlreadyRunning(
                    f"{self.host}:{self.port} is in use; set NOC_PORT to another port."
                ) from exc

    # --- preparation -------------------------------------------------------------------

    def prepare(self) -> None:
        self.say("Applying migrations…")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.say("Loading demo data…")
        call_command("load_demo", verbosity=0)
        self.backfill_demo_history()
        call_command("sync_beat", verbosity=0)
        self.ensure_admin()

    def backfill_demo_history(self) -> None:
        """On first start, a week of demo history so uptime and charts have data at once."""
        from services.models import CheckResult

        if CheckResult.objects.filter(service__tags__contains=["demo"]).exists():
            return
        self.say("Writing a week of demo check history (first start only)…")
        call_command("backfill_demo", "--days", "7", stdout=self.out)

    def ensure_admin(self) -> None:
        from accounts.actions import user_create
        from accounts.choices import Role
        from accounts.models import User

        username = settings.NOC_ADMIN_USERNAME
        if User.objects.filter(username=username).exists():
            return
        password = os.environ.get("NOC_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_create(
            actor=None, username=username, email=f"{username}@noc.localhost", role=Role.ADMIN
        )
        user = User.objects.get(username=username)
        user.set_password(password)  # chosen by the operator: no validators
        user.save(update_fields=["password"])
        shown = "(from NOC_ADMIN_PASSWORD)" if os.environ.get("NOC_ADMIN_PASSWORD") else password
        self.say(f"Created admin account {username!r} with password {shown}. It is shown once.")

    # --- processes ---------------------------------------------------------------------

    def plan(self) -> list[Child]:
        python = sys.executable
        hostname = socket.gethostname()
        return [
            # noc.asgi: pings on the event loop with group commit, the rest through Django
            # (README, "Push pings"); one host and port for everything.
            Child("web", [
                python, "-m", "uvicorn", "noc.asgi:application", "--host", self.host,
                "--port", str(self.port), "--workers", str(settings.NOC_WEB_WORKERS),
                "--loop", "uvloop", "--http", "httptools", "--timeout-graceful-shutdown", "10",
            ]),
            # Scheduled work and every other job in pools of their own (noc/celery.py).
            Child("worker", [
                python, "-m", "celery", "-A", "noc", "worker", "-Q", ",".join(SCHEDULED_QUEUES),
                "--concurrency", str(settings.NOC_WORKER_CONCURRENCY), "-n", f"noc@{hostname}",
                "--loglevel", "INFO",
            ]),
            Child("jobs", [
                python, "-m", "celery", "-A", "noc", "worker", "-Q", ",".join(JOB_QUEUES),
                "--concurrency", str(settings.NOC_JOBS_CONCURRENCY),
                "-n", f"noc-jobs@{hostname}", "--loglevel", "INFO",
            ]),
            Child("beat", [python, "-m", "celery", "-A", "noc", "beat", "--loglevel", "INFO"]),
            Child("demo-target", [
                python, "-m", "noc.demo_target",
                "--port", str(settings.NOC_DEMO_PORT),
            ]),
        ]  # fmt: skip

    def child_env(self) -> dict[str, str]:
        environ = dict(os.environ)
        # The children use the servers this runner attached to; they never start their own.
        environ["NOC_EMBEDDED"] = "off"
        environ["PYTHONUNBUFFERED"] = "1"
        return environ

    def start(self) -> None:
        self.children = self.plan()
        for child in self.children:
            self.spawn(child)

    def spawn(self, child: Child) -> None:
        # A session of its own: Ctrl-C reaches the runner, which stops children in order.
        child.process = subprocess.Popen(
            child.argv,
            env=self.child_env(),
            cwd=settings.BASE_DIR,
            start_new_session=True,
            preexec_fn=die_with_parent,  # only prctl: safe between fork and exec
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        self.say(f"Started {child.name} (pid {child.process.pid}).")

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            if child.process and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_GRACE_SECONDS}s; killing it.")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            # Anything the child left in its session (uvicorn or celery pool processes) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Supervise until a signal asks to stop (0), or a child keeps dying right after each
        start (1). A child that dies is restarted under the RestartPolicy."""
        while not self.stopping:
            for child in self.children:
                if self.stopping:
                    break
                if child.restart_at is not None:
                    if time.monotonic() >= child.restart_at:
                        self.spawn(child)
                    continue
                code = child.process.poll() if child.process else None
                if code is not None and not self.stopping and not self.on_death(child, code):
                    return 1
            time.sleep(0.2)
        return 0

    def on_death(self, child: Child, code: int) -> bool:
        """Log the death, clean up what the child left, schedule its restart. False when it
        died too often in a row right after starting: the stack stops."""
        lived = time.monotonic() - child.started_at
        child.quick_deaths = child.quick_deaths + 1 if lived < self.policy.healthy_after else 1
        # Its own children (the web server's workers, the Celery pool) go before a new one starts.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if child.quick_deaths >= self.policy.max_quick_deaths:
            self.say(
                f"{child.name} {how} after {lived:.1f}s: {child.quick_deaths} deaths in a row, "
                f"each within {self.policy.healthy_after:.0f}s of its start. Stopping "
                f"everything; the output above says why {child.name} cannot run."
            )
            return False
        delay = self.policy.backoff(child.quick_deaths)
        self.say(f"{child.name} {how} after {lived:.1f}s; restarting it in {delay:g}s.")
        child.restart_at = time.monotonic() + delay
        return True

    def say(self, message: str) -> None:
        self.out.write(f"[noc] {message}\n")
        self.out.flush()

    def banner(self) -> None:
        base = f"http://{self.host}:{self.port}"
        self.say(f"Dashboard  {base}/")
        self.say(f"Admin      {base}/admin/")
        self.say(f"API docs   {base}/api/docs/")
        self.say(f"Health     {base}/health/ready")
        self.say("Press Ctrl-C to stop.")


def run(*, host: str, port: int, out: TextIO = sys.stdout) -> int:
    from noc.embedded import EmbeddedServices

    runner = Runner(host=host, port=port, out=out)
    runner.acquire_lock()
    runner.check_port_free()

    def on_signal(signum, frame):
        runner.stopping = True

    # Ctrl-C, `kill` and a closed terminal all stop everything, the embedded servers included.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    code = 0
    try:
        runner.prepare()  # a stop asked meanwhile lets the step running finish, then no start
        if not runner.stopping:
            runner.start()
            runner.banner()
            code = runner.wait()
    finally:
        runner.say("Stopping…")
        runner.stop()
        if os.environ.get("NOC_EMBEDDED_ATTACHED"):
            from django.db import connections

            connections.close_all()
            if EmbeddedServices().detach():
                runner.say("Stopped the embedded PostgreSQL and Redis.")
        runner.say("Stopped.")
    return code
