"""The demo SLOs `make run` loads are valid and evaluate."""

from __future__ import annotations

from django.core.management import call_command

from slos.actions import slos_evaluate
from slos.models import SLO


def test_the_demo_slos_load_twice_pass_validation_and_evaluate(db):
    call_command("load_demo", verbosity=0)
    call_command("load_demo", verbosity=0)
    slos = list(SLO.objects.select_related("service"))
    assert {s.id for s in slos} >= {"noc-web-availability", "demo-healthy-latency"}
    for slo in slos:
        slo.full_clean()
    assert slos_evaluate() == len(slos)
