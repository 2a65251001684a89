"""Migration 0022 gives fills and trades a symbol, filling it in for runs stored before it."""

from __future__ import annotations

import duckdb

from trading_core.warehouse import migrations as M


def test_runs_stored_before_0022_get_their_symbol_backfilled() -> None:
    con = duckdb.connect()
    later = []
    for m in M.available_migrations():
        if m.version < 22:
            con.execute(m.sql)
        else:
            later.append(m)
    con.execute("INSERT INTO backtest.runs (run_id, created_at, strategy, params, venue, symbol, timeframe, "
                "start_ts, end_ts, config, execution_model_hash, metrics) VALUES ('old', now(), 's', '{}', "
                "'yahoo', '^GSPC', '1d', now(), now(), '{}', 'h', '{}')")
    con.execute("INSERT INTO backtest.fills (run_id, portfolio, fill_no, order_id, ts, side, qty, price, fee, "
                "slippage_cost, reason) VALUES ('old', 0, 0, 1, now(), 'buy', 1, 1, 0, 0, 'open')")
    con.execute("INSERT INTO backtest.trades (run_id, trade_no, portfolio, side, entry_ts, entry_price, "
                "quantity, fees, pnl) VALUES ('old', 0, 0, 'long', now(), 1, 1, 0, 0)")
    for m in later:
        con.execute(m.sql)
    assert con.execute("SELECT symbol FROM backtest.fills").fetchall() == [("^GSPC",)]
    assert con.execute("SELECT symbol FROM backtest.trades").fetchall() == [("^GSPC",)]
