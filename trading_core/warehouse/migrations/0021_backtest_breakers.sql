-- Circuit-breaker history of each backtest run (trading_core.backtest.stepped, DML in
-- warehouse/backtests.py). Kept per run in the backtest schema, not in risk.circuit_breaker_*:
-- those hold the live state of paper sessions, which a backtest must never overwrite.
CREATE TABLE backtest.breaker_events (
    run_id     VARCHAR     NOT NULL,
    event_no   INTEGER     NOT NULL,   -- order of the transition within the run
    ts         TIMESTAMPTZ NOT NULL,   -- decision time (a bar's close)
    level      VARCHAR     NOT NULL,   -- strategy | portfolio | system | market
    scope      VARCHAR     NOT NULL,
    from_state VARCHAR     NOT NULL,
    to_state   VARCHAR     NOT NULL,
    event      VARCHAR     NOT NULL,   -- trip_reduce | trip_halt | recover | reset
    rule       VARCHAR,
    metrics    JSON        NOT NULL,   -- the values that caused it
    PRIMARY KEY (run_id, event_no)
);

-- The state every breaker was left in at the end of the run.
CREATE TABLE backtest.breaker_states (
    run_id         VARCHAR     NOT NULL,
    level          VARCHAR     NOT NULL,
    scope          VARCHAR     NOT NULL,
    state          VARCHAR     NOT NULL,
    reason         VARCHAR,
    since          TIMESTAMPTZ,
    cooldown_until TIMESTAMPTZ,
    latched        BOOLEAN     NOT NULL,
    memo           JSON        NOT NULL,
    PRIMARY KEY (run_id, level, scope)
);
