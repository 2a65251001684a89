-- Risk layer audit and circuit-breaker state (trading_core.risk, DML in warehouse/risk.py).
--
-- A schema of its own, not `ops`: `ops` holds the platform's plumbing (schema_migrations); these
-- tables are domain records -- every order the risk layer allowed, resized, rejected or halted,
-- and the state of every breaker -- read by monitoring and by a reviewer asking "why was this
-- order denied". A separate schema can be published as a snapshot, retained and permissioned on
-- its own. The same tables exist in warehouse.duckdb (backtests) and paper.duckdb (paper
-- sessions): each file has one writer.
CREATE SCHEMA IF NOT EXISTS risk;

-- One row per risk decision on an order. decision_id is deterministic (run, ts, portfolio,
-- order_ref), and writes use INSERT OR IGNORE, so a replayed bar never duplicates a decision.
CREATE TABLE risk.risk_decisions (
    decision_id   VARCHAR     PRIMARY KEY,
    run_id        VARCHAR     NOT NULL,   -- backtest run id or paper session id
    context       VARCHAR     NOT NULL,   -- backtest | paper | stress
    ts            TIMESTAMPTZ NOT NULL,   -- decision point (bar time, UTC)
    portfolio     VARCHAR     NOT NULL,
    strategy      VARCHAR     NOT NULL,
    order_ref     BIGINT      NOT NULL,   -- order id or position in the batch
    symbol        VARCHAR,                -- NULL when the symbol itself was unknown
    side          VARCHAR     NOT NULL,   -- buy | sell
    requested_qty DOUBLE,
    approved_qty  DOUBLE      NOT NULL,   -- 0 unless allowed or resized
    price         DOUBLE,
    decision      VARCHAR     NOT NULL,   -- allowed | resized | rejected | halted
    reason        VARCHAR     NOT NULL,   -- reason name (trading_core.risk.codes.RiskReason)
    reason_code   SMALLINT    NOT NULL,
    trading_state VARCHAR     NOT NULL,   -- active | reduce_only | halted, as seen by the order
    inputs        JSON        NOT NULL,   -- every value the checks used (last price, ADV, limits, ...)
    recorded_at   TIMESTAMPTZ NOT NULL
);

-- Current state of every breaker: one row per (level, scope), replaced on change.
CREATE TABLE risk.circuit_breaker_states (
    level          VARCHAR     NOT NULL,  -- strategy | portfolio | system | market
    scope          VARCHAR     NOT NULL,  -- strategy name, portfolio id, 'system', 'market'
    state          VARCHAR     NOT NULL,  -- active | reduce_only | halted
    reason         VARCHAR,               -- rule that set the state
    since          TIMESTAMPTZ,
    cooldown_until TIMESTAMPTZ,
    latched        BOOLEAN     NOT NULL,  -- only a manual reset clears it
    memo           JSON        NOT NULL,  -- peaks, day-start equity, streak base
    updated_at     TIMESTAMPTZ,
    saved_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (level, scope)
);

-- Append-only history of every breaker transition, with the metrics that caused it.
CREATE TABLE risk.circuit_breaker_events (
    event_id    VARCHAR     PRIMARY KEY,  -- deterministic: (ts, level, scope, event, from, to)
    ts          TIMESTAMPTZ NOT NULL,
    level       VARCHAR     NOT NULL,
    scope       VARCHAR     NOT NULL,
    from_state  VARCHAR     NOT NULL,
    to_state    VARCHAR     NOT NULL,
    event       VARCHAR     NOT NULL,     -- trip_reduce | trip_halt | recover | reset
    rule        VARCHAR,
    actor       VARCHAR     NOT NULL,     -- 'system' or the operator who reset
    metrics     JSON        NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
