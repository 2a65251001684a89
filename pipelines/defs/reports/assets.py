"""``daily_summary``: the platform's day in ``ops.daily_summary`` (+ its HTML under
``<data>/reports/daily/``), and ``alerts_sensor``, which evaluates the alert rules and delivers.

Thin: the computation is ``trading_core.analytics.report_daily``, the rules and delivery
``trading_core.alerts``. The asset writes the warehouse, so it takes the ``duckdb_writer`` pool.
The sensor writes no DuckDB file (its journal is a JSON-lines file) and keeps its ticks short:
deliveries time out after ``alerts.timeout_s``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ..resources import TradingConfigResource, WarehouseResource


@dg.asset(name="daily_summary", group_name="reports", pool="duckdb_writer", kinds={"duckdb", "html"},
          description="Sessions, PnL, fills, alerts and data freshness of the day (ops.daily_summary).")
def daily_summary(trading_config: TradingConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from trading_core.alerts import journal_for
    from trading_core.analytics.report import write_report
    from trading_core.analytics.report_daily import (
        compute_daily_summary,
        render_daily_summary,
        store_daily_summary,
    )

    cfg = trading_config.load()
    wh = warehouse.get()
    row, sessions = compute_daily_summary(cfg, wh)
    store_daily_summary(wh, row, sessions, journal_for(cfg).acknowledged())
    page = write_report(render_daily_summary(row, sessions),
                        Path(cfg.data_dir) / "reports" / "daily" / f"{row['day'].isoformat()}.html")
    return dg.MaterializeResult(metadata={
        "day": row["day"].isoformat(), "sessions": row["sessions"], "fills": row["fills"], "alerts": row["alerts"],
        "pnl": dg.MetadataValue.float(float(row["pnl"] or 0.0)), "html": dg.MetadataValue.path(str(page)),
        "stalest_series": row["stalest_series"] or "-"})


daily_summary_job = dg.define_asset_job("daily_summary_job", selection=[daily_summary])

daily_summary_schedule = dg.ScheduleDefinition(
    name="daily_summary_schedule", target=daily_summary_job, cron_schedule="50 23 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)


@dg.sensor(name="alerts_sensor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Evaluates the alert rules on stored data and delivers new alerts once per key.")
def alerts_sensor(context: dg.SensorEvaluationContext, trading_config: TradingConfigResource) -> dg.SkipReason:
    from trading_core.alerts import run_alerts

    summary = run_alerts(trading_config.load())
    context.log.info(f"alerts: {summary}")
    if not summary.get("enabled"):
        return dg.SkipReason("alerts disabled (alerts.enabled: false)")
    failed = summary["failed"]
    return dg.SkipReason(f"{summary['alerts']} alerts, {summary['sent']} sent now "
                         f"({summary['resent']} re-sent), {summary['already_delivered']} delivered before"
                         + (f", {len(failed)} failed: {failed[0]['error']}" if failed else ""))
