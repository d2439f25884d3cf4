"""Signals other apps listen to (the dependency points from incidents to services)."""

from django.dispatch import Signal

# Sent inside the recording transaction with `recorded`: a list of services.actions.Recorded,
# one per newly recorded result that moved a service's state. Incident evaluation connects here
# so time to detect is the check interval, not a later sweep.
check_results_recorded = Signal()
