"""Pure translation of a plan into desired children, statuses and events (no I/O)."""
