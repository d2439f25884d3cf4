"""Logs: one store interface (`store.log_store()`), a PostgreSQL backend (the default) and an
Elasticsearch one (when ELASTICSEARCH_URL is set) with its durable outbox, the search syntax,
the JSON decoder and the shipping of the project's own logs."""
