-- Backtest detail beyond 0002: one row per portfolio of a run (a parameter grid has several) and
-- every fill, so a run's trade list can be re-derived and audited from the warehouse alone.
CREATE TABLE backtest.portfolios (
    run_id        VARCHAR  NOT NULL,
    portfolio     INTEGER  NOT NULL,
    symbol        VARCHAR  NOT NULL,
    params        JSON     NOT NULL,
    metrics       JSON     NOT NULL,
    final_equity  DOUBLE   NOT NULL,
    total_return  DOUBLE   NOT NULL,
    sharpe        DOUBLE,
    max_drawdown  DOUBLE   NOT NULL,
    trades        INTEGER  NOT NULL
);

CREATE TABLE backtest.fills (
    run_id        VARCHAR     NOT NULL,
    portfolio     INTEGER     NOT NULL,
    fill_no       INTEGER     NOT NULL,
    order_id      BIGINT      NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    side          VARCHAR     NOT NULL,
    qty           DOUBLE      NOT NULL,
    price         DOUBLE      NOT NULL,
    fee           DOUBLE      NOT NULL,
    slippage_cost DOUBLE      NOT NULL,
    reason        VARCHAR     NOT NULL
);
