"""Read snapshots for the UIs and the CLI, published from the live warehouse."""
