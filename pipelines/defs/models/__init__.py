"""The model lifecycle in Dagster: dataset, trained candidates, champion, drift checks, the weekly
retrain schedule and the drift-triggered retrain sensor (thin shells over trading_core.ml)."""
