"""Paper-trading sessions: configuration, control requests, feeds, the run loop over the Trader,
pre-flight, alerts. The ledger's SQL lives in ``warehouse.paper``; docs/paper-trading.md explains
operation and recovery."""
