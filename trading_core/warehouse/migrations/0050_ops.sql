-- Operations: the daily summary of the platform and a copy of every alert delivery.
-- The delivery journal itself is a JSON-lines file under <data>/alerts/ (any process may deliver,
-- only Dagster steps may write this file); the daily summary asset copies it here for queries.
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE ops.daily_summary (
    day              DATE        PRIMARY KEY,
    as_of            TIMESTAMPTZ NOT NULL,
    sessions         INTEGER     NOT NULL,
    sessions_running INTEGER     NOT NULL,
    sessions_stale   INTEGER     NOT NULL,
    equity           DOUBLE,
    pnl              DOUBLE,
    day_pnl          DOUBLE,
    fills            BIGINT      NOT NULL,
    day_fills        BIGINT      NOT NULL,
    alerts           INTEGER     NOT NULL,
    alerts_by_kind   JSON        NOT NULL,
    stalest_series   VARCHAR,
    stalest_age_h    DOUBLE,
    freshness        JSON        NOT NULL
);

CREATE TABLE ops.daily_session_summary (
    day        DATE    NOT NULL,
    session_id VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    state      VARCHAR NOT NULL,
    bars       BIGINT  NOT NULL,
    fills      BIGINT  NOT NULL,
    day_fills  BIGINT  NOT NULL,
    equity     DOUBLE,
    pnl        DOUBLE,
    day_pnl    DOUBLE,
    PRIMARY KEY (day, session_id)
);

CREATE TABLE ops.alert_deliveries (
    alert_key       VARCHAR     NOT NULL,
    channel         VARCHAR     NOT NULL,
    kind            VARCHAR     NOT NULL,
    severity        VARCHAR     NOT NULL,
    subject         VARCHAR,
    idempotency_key VARCHAR     NOT NULL,
    attempts        INTEGER     NOT NULL,
    acked_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (alert_key, channel)
);
