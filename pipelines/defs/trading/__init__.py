"""Paper trading in Dagster: the long-running session job and the sensors that launch and supervise it."""
