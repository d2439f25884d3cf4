"""Reads of the console's pages, one module per page; each page costs a fixed number of
set-based queries whatever the number of services (tests hold the counts)."""
