"""Executing dispatched slots in a worker: fetch every target of the batch at once, read each
body as its collector's kind says, and record the batch (collectors.actions)."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from collectors import actions, tokens
from collectors.actions import Execution, Slot
from collectors.choices import CollectorKind, RunStatus
from collectors.fetching import Fetched, Target, fetch_all_sync
from collectors.kinds import BodyError, Reading, http_json, ohlcv, prometheus
from collectors.models import Collector, CollectorRun
from collectors.validation import effective_allow_private
from observability.points import to_us


def target_for(collector: Collector, due: float) -> Target:
    """Raises tokens.TokenUnavailable when the collector's token cannot be read."""
    url = collector.url
    if collector.kind == CollectorKind.OHLCV:
        url = url.replace("{symbol}", collector.symbol)
    return Target(
        url=url, kind=collector.kind, timeout=collector.timeout_seconds,
        max_bytes=collector.max_body_bytes or settings.COLLECTOR_MAX_BODY_BYTES,
        allow_private=effective_allow_private(collector), due=due,
        token=tokens.bearer_token(
            encrypted=collector.token, env_name=collector.bearer_token_env
        ),
    )  # fmt: skip


def labels_of(collector: Collector) -> dict[str, str]:
    labels = dict(collector.extra_labels or {})
    if collector.kind == CollectorKind.OHLCV:
        labels.update(symbol=collector.symbol, timeframe=collector.timeframe)
    return labels


def read(run: CollectorRun, fetched: Fetched, time_us: int) -> Reading:
    """What the body means for the run's collector; a body that cannot be read is the
    execution's error, never an exception."""
    collector = run.collector
    if fetched.error or fetched.body is None:
        return _failed(run, fetched.error or "no body", time_us)
    try:
        if collector.kind == CollectorKind.PROMETHEUS:
            return Reading(points=prometheus.points(
                fetched.body, content_type=fetched.content_type, time_us=time_us,
                allow=collector.metric_allow, deny=collector.metric_deny,
                extra_labels=collector.extra_labels,
            ))  # fmt: skip
        if collector.kind == CollectorKind.HTTP_JSON:
            return http_json.reading(
                fetched.body,
                paths=collector.json_paths,
                time_us=time_us,
                labels=labels_of(collector),
            )
        return ohlcv.reading(
            fetched.body, price_path=collector.price_path, timeframe=collector.timeframe,
            time_us=time_us, state=run.state, labels=labels_of(collector),
        )  # fmt: skip
    except BodyError as exc:
        return _failed(run, str(exc), time_us)


def _failed(run: CollectorRun, error: str, time_us: int) -> Reading:
    collector = run.collector
    if collector.kind == CollectorKind.OHLCV:
        closed = ohlcv.flush(
            run.state, now_us=time_us, timeframe=collector.timeframe, labels=labels_of(collector)
        )
        closed.error = error
        return closed
    return Reading(error=error)


def run_slots(slots: Sequence[Slot]) -> list[int]:
    """Execute one dispatched batch and record it; slots of runs stopped (or claimed again)
    since dispatch are skipped. Returns the ids of the runs recorded."""
    runs = CollectorRun.objects.select_related("collector").in_bulk([s.run_id for s in slots])
    live = [
        s for s in slots
        if (run := runs.get(s.run_id)) and run.status == RunStatus.RUNNING
        and run.claimed_slot == s.due
    ]  # fmt: skip
    if not live:
        return []
    actions.collector_executions_begin(slots=live, runs=runs)
    targets, broken = [], {}
    for slot in live:
        try:
            targets.append((slot, target_for(runs[slot.run_id].collector, slot.due.timestamp())))
        except tokens.TokenUnavailable as exc:
            broken[slot] = f"bearer token unavailable: {exc}"
    fetched = fetch_all_sync([target for _, target in targets])
    executions = []
    for (slot, _target), result in zip(targets, fetched, strict=True):
        run = runs[slot.run_id]
        started = actions.started_at_of(result.started)
        executions.append(Execution(slot, read(run, result, to_us(slot.due)), started))
    for slot, error in broken.items():
        executions.append(Execution(slot, Reading(error=error), slot.due))
    return actions.collector_executions_record(executions=executions)
