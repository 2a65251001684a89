-- Pipeline health: the latest Dagster runs and asset-check evaluations, as the
-- pipeline_health_sensor last read them from the Dagster instance (upserted by run id and by
-- (asset, check)); the app reads the sensor's JSON document under <data>/ops/ instead, which is
-- fresh on every tick, and these tables keep the history for queries.
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE ops.pipeline_runs (
    run_id        VARCHAR     PRIMARY KEY,
    job           VARCHAR     NOT NULL,
    status        VARCHAR     NOT NULL,
    created_at    TIMESTAMPTZ,
    started_at    TIMESTAMPTZ,
    ended_at      TIMESTAMPTZ,
    duration_s    DOUBLE,
    partition_key VARCHAR,
    session_id    VARCHAR,
    tags          JSON        NOT NULL,
    failed_step   VARCHAR,
    failure       VARCHAR,
    seen_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE ops.asset_checks (
    asset        VARCHAR     NOT NULL,
    check_name   VARCHAR     NOT NULL,
    status       VARCHAR     NOT NULL,
    passed       BOOLEAN,
    severity     VARCHAR,
    description  VARCHAR,
    evaluated_at TIMESTAMPTZ,
    run_id       VARCHAR,
    partition_key VARCHAR,
    seen_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (asset, check_name)
);
