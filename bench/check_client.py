"""CPU per HTTP check on the worker's path, against the bare aiohttp client in the same run.

    .venv/bin/python bench/check_client.py [--checks 20000] [--batch 200] [--rounds 3]
                                           [--only worker|bare|both]

What runs, in this one process: nginx (Debian's nginx-light) serves a tiny response on
loopback, as in bench/checks.py. The worker's path is `services.execution.run_on_time` on
batches of `--batch` CheckSpecs built by `spec_for` from Service rows shaped like
bench/checks.py's (a GET of a distinct http:// URL each, expected status 200, timeout 5 s,
private addresses allowed), all due now, `--batch` at once, as a worker runs a dispatched
batch (its kept event loop and sessions included). The ceiling is the bare aiohttp client on
the same event loop kind (uvloop), one session, the same URLs in the same batches gathered the
same way, reading each body. Rounds alternate worker and bare so that the machine's load
hits both alike.

Reported: process CPU time per check (user + system, this process and its threads: what the
worker pays, whatever else the machine does), checks/s of wall time on one process, and the
ratio of the worker path's CPU per check to the bare client's (median of the rounds), and
the share of each that went to Python's cyclic garbage collector. The worker path raises the
collector's threshold while a batch runs; the bare client runs twice a round, with the default
threshold (as bench/checks.py's) and with the worker's, the second being the fair ceiling.
Django is set up (spec_for needs the models) but no database is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import start_nginx
from bench.common import machine_busy_fraction, ratio, stop_process


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=20_000, help="checks per round and path")
    parser.add_argument("--batch", type=int, default=200, help="checks run at once (a batch)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("worker", "bare", "both"), default="both")
    return parser.parse_args()


def setup_django() -> None:
    # spec_for needs the models loaded; nothing here opens a database connection.
    os.environ.setdefault("DATABASE_URL", "postgresql://bench@127.0.0.1:1/unused")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    os.environ.setdefault("NOC_EMBEDDED", "off")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")
    import django

    django.setup()


def worker_specs(target: str, count: int) -> list:
    """CheckSpecs built as the worker builds them, from services like bench/checks.py's."""
    from services.execution import spec_for
    from services.models import Service

    def service(i: int) -> Service:
        return Service(
            id=f"bench-{i:06d}", name=f"bench {i}", url=f"{target}/s/{i}",
            interval_seconds=60, timeout_seconds=5, allow_private=True,
        )  # fmt: skip

    return [spec_for(service(i)) for i in range(count)]


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Collections:
    """How many times the cyclic collector ran, and its CPU, while a path ran."""

    def __init__(self) -> None:
        self.runs, self.seconds, self._began = 0, 0.0, 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.runs += 1
            self.seconds += time.process_time() - self._began

    def take(self) -> tuple[int, float]:
        taken = (self.runs, self.seconds)
        self.runs, self.seconds = 0, 0.0
        return taken


def run_worker_path(specs: list, size: int) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, checks up) for `specs` through run_on_time, batch by batch."""
    from django.utils import timezone

    from services.execution import run_on_time

    up = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches(specs, size):
        now = timezone.now()
        outcomes = run_on_time([(spec, now) for spec in batch], size)
        up += sum(1 for _, outcome in outcomes if outcome.status == "up")
    return time.process_time() - cpu, time.perf_counter() - wall, up


class BareClient:
    """The bare aiohttp client: one session on a kept uvloop, as the ceiling."""

    def __init__(self, size: int) -> None:
        from services.checks.engine import _loop_factory

        self.size = size
        self.runner = asyncio.Runner(loop_factory=_loop_factory())
        self.session = self.runner.run(self._open())

    async def _open(self):
        import aiohttp

        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.size))

    async def _batch(self, urls: list[str]) -> int:
        async def get(url: str) -> int:
            async with self.session.get(url) as response:
                await response.read()
                return response.status

        return sum(1 for s in await asyncio.gather(*(get(u) for u in urls)) if s == 200)

    def run(self, urls: list[str]) -> tuple[float, float, int]:
        up = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in batches(urls, self.size):
            up += self.runner.run(self._batch(batch))
        return time.process_time() - cpu, time.perf_counter() - wall, up

    def close(self) -> None:
        self.runner.run(self.session.close())
        self.runner.close()


WORKER_GC_THRESHOLD = 20_000  # services.execution.BATCH_GC_THRESHOLD (also before it existed)


def relaxed(run, *args):
    """`run` under the collector threshold the worker path sets while a batch runs."""
    saved = gc.get_threshold()
    gc.set_threshold(max(saved[0], WORKER_GC_THRESHOLD), *saved[1:])
    try:
        return run(*args)
    finally:
        gc.set_threshold(*saved)


def main() -> None:
    args = parse_args()
    setup_django()
    tmp = Path(tempfile.mkdtemp(prefix="noc-bench-check-client-"))
    nginx, port = start_nginx(tmp)
    try:
        target = f"http://127.0.0.1:{port}"
        specs = worker_specs(target, args.checks)
        urls = [spec.url for spec in specs]
        busy_before = machine_busy_fraction(2)
        results = measure(args, specs, urls)
    finally:
        stop_process(nginx)
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, results, busy_before)


def measure(args: argparse.Namespace, specs: list, urls: list[str]) -> dict[str, list]:
    bare = BareClient(args.batch) if args.only != "worker" else None
    paths = {}
    if args.only != "bare":
        paths["worker"] = lambda: run_worker_path(specs, args.batch)
    if bare is not None:
        paths["bare"] = lambda: bare.run(urls)
        paths["bare_relaxed"] = lambda: relaxed(bare.run, urls)
    warm = args.batch * 5
    if "worker" in paths:
        run_worker_path(specs[:warm], args.batch)  # connections opened, code paths warm
    if bare is not None:
        bare.run(urls[:warm])
    results: dict[str, list] = {name: [] for name in paths}
    collections = Collections()
    try:
        for round_ in range(args.rounds):
            for name, run in paths.items():
                collections.take()
                cpu, wall, up = run()
                runs, gc_cpu = collections.take()
                results[name].append((cpu, wall, up, runs, gc_cpu))
                print(
                    f"round {round_ + 1} {name}: {1e6 * cpu / len(specs):.0f} µs CPU/check, "
                    f"{len(specs) / wall:,.0f} checks/s, {up}/{len(specs)} up; "
                    f"cyclic collector {runs} runs, {1e6 * gc_cpu / len(specs):.1f} µs/check",
                    flush=True,
                )
    finally:
        if bare is not None:
            bare.close()
    return results


def report(args: argparse.Namespace, results: dict[str, list], busy_before: float) -> None:
    def median(name: str, value) -> float:
        return statistics.median(value(*run) for run in results[name])

    per_check = {name: median(name, lambda cpu, *_: cpu / args.checks) for name in results}
    rate = {name: median(name, lambda _, wall, *__: args.checks / wall) for name in results}
    gc_per_check = {name: median(name, lambda *r: r[4] / args.checks) for name in results}
    failed = {name: sum(args.checks - run[2] for run in runs) for name, runs in results.items()}
    lines = [
        f"machine: {os.cpu_count()} cores, {busy_before:.0%} busy before measuring, "
        f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"{args.checks:,} checks a round in batches of {args.batch}, {args.rounds} rounds, "
        "medians; one process",
    ]
    names = {
        "worker": "worker path (run_on_time)",
        "bare": "bare aiohttp client",
        "bare_relaxed": "bare, collector as worker's",
    }
    for name in per_check:
        lines.append(
            f"{names[name]:27} {1e6 * per_check[name]:6.0f} µs CPU/check, "
            f"{rate[name]:8,.0f} checks/s, not up {failed[name]}; of which cyclic collector "
            f"{1e6 * gc_per_check[name]:.1f} µs/check"
        )
    for bare in ("bare", "bare_relaxed"):
        if "worker" in per_check and bare in per_check:
            lines.append(
                f"ratio worker/{bare}: CPU per check "
                f"{ratio(per_check['worker'], per_check[bare]):.2f}, "
                f"checks/s {ratio(rate['worker'], rate[bare]):.2f}"
            )
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
