"""Traces: spans as the ingestion writes them (`records`, `store`) and the trace list and span
tree the API reads (`query`)."""
