-- Backtest results: the full configuration and the execution-model hash make a run reproducible.
CREATE TABLE backtest.runs (
    run_id          VARCHAR     PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL,
    strategy        VARCHAR     NOT NULL,
    params          JSON        NOT NULL,
    venue           VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    timeframe       VARCHAR     NOT NULL,
    start_ts        TIMESTAMPTZ,
    end_ts          TIMESTAMPTZ,
    config          JSON        NOT NULL,
    execution_model_hash VARCHAR NOT NULL,
    metrics         JSON        NOT NULL
);

CREATE TABLE backtest.trades (
    run_id      VARCHAR     NOT NULL,
    trade_no    INTEGER     NOT NULL,
    portfolio   INTEGER     NOT NULL,
    side        VARCHAR     NOT NULL,
    entry_ts    TIMESTAMPTZ NOT NULL,
    exit_ts     TIMESTAMPTZ,
    entry_price DOUBLE      NOT NULL,
    exit_price  DOUBLE,
    quantity    DOUBLE      NOT NULL,
    fees        DOUBLE      NOT NULL,
    pnl         DOUBLE
);

CREATE TABLE backtest.equity (
    run_id    VARCHAR     NOT NULL,
    portfolio INTEGER     NOT NULL,
    ts        TIMESTAMPTZ NOT NULL,
    equity    DOUBLE      NOT NULL,
    cash      DOUBLE      NOT NULL,
    position  DOUBLE      NOT NULL
);
