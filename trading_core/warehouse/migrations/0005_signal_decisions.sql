-- Signal-filter decisions of backtests (trading_core.strategies.filters, DML in warehouse/signals.py).
--
-- One row per raw strategy signal: whether the filters let it through and, if not, why
-- (smoothing, confirmation, min_hold, stale_data, data_gap, throttled, risk_blocked, cancelled).
-- Kept apart from risk.risk_decisions because these are decisions on *signals* (before any order
-- exists); a reviewer joins the two on (run_id, ts, portfolio). Keyed by (run_id, bar, portfolio,
-- kind) so a rewritten run never duplicates a row.
CREATE TABLE backtest.signal_decisions (
    run_id      VARCHAR     NOT NULL,
    context     VARCHAR     NOT NULL,   -- backtest | paper
    ts          TIMESTAMPTZ NOT NULL,   -- open time of the bar whose close decided the signal
    bar         BIGINT      NOT NULL,
    portfolio   BIGINT      NOT NULL,
    strategy    VARCHAR     NOT NULL,
    symbol      VARCHAR,
    kind        VARCHAR     NOT NULL,   -- entry | exit
    decision    VARCHAR     NOT NULL,   -- allowed | suppressed
    reason      VARCHAR     NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, bar, portfolio, kind)
);
