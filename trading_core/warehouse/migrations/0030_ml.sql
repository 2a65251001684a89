-- The model lifecycle (trading_core.ml; DML in warehouse/ml.py). MLflow holds the runs, artifacts
-- and aliases; these tables hold what the platform decided and measured, queryable beside the
-- bars and features it came from (Streamlit, reports), keyed so a replayed write never duplicates.

-- A labelled dataset: the exact rows a training run used (content hash over inputs and labels).
CREATE TABLE ml.datasets (
    dataset_hash    VARCHAR     NOT NULL PRIMARY KEY,
    venue           VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    timeframe       VARCHAR     NOT NULL,
    start_ts        TIMESTAMPTZ NOT NULL,
    end_ts          TIMESTAMPTZ NOT NULL,
    rows            BIGINT      NOT NULL,
    feature_version VARCHAR     NOT NULL,
    label           VARCHAR     NOT NULL,   -- JSON LabelConfig
    positive_rate   DOUBLE,
    recorded_at     TIMESTAMPTZ NOT NULL
);

-- One training run: every candidate evaluated on the same folds, the one registered (if any).
CREATE TABLE ml.training_runs (
    train_id       VARCHAR     NOT NULL PRIMARY KEY,
    created_at     TIMESTAMPTZ NOT NULL,
    dataset_hash   VARCHAR     NOT NULL,
    model_name     VARCHAR     NOT NULL,
    mlflow_run_id  VARCHAR,
    version        BIGINT,                  -- registered model version, NULL if none
    chosen_kind    VARCHAR     NOT NULL,
    score_metric   VARCHAR     NOT NULL,
    git_commit     VARCHAR,
    dagster_run_id VARCHAR,
    summary        VARCHAR     NOT NULL,    -- JSON: aggregate scores and trading result per kind
    recorded_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE ml.fold_scores (
    train_id          VARCHAR     NOT NULL,
    kind              VARCHAR     NOT NULL,
    fold              INTEGER     NOT NULL,
    train_rows        BIGINT      NOT NULL,
    test_rows         BIGINT      NOT NULL,
    test_start        TIMESTAMPTZ NOT NULL,
    test_end          TIMESTAMPTZ NOT NULL,
    accuracy          DOUBLE,
    balanced_accuracy DOUBLE,
    log_loss          DOUBLE,
    auc               DOUBLE,
    recorded_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (train_id, kind, fold)
);

-- Every promotion decision (promote, refuse, rollback) with its reasons: why a version is or is
-- not champion is data, not a log line.
CREATE TABLE ml.promotion_decisions (
    decision_id       VARCHAR     NOT NULL PRIMARY KEY,
    decided_at        TIMESTAMPTZ NOT NULL,
    model_name        VARCHAR     NOT NULL,
    version           BIGINT      NOT NULL,
    action            VARCHAR     NOT NULL,   -- promote | refuse | rollback
    promoted          BOOLEAN     NOT NULL,
    previous_champion BIGINT,
    champion          BIGINT,                 -- the champion after the decision
    reasons           VARCHAR     NOT NULL,   -- JSON list of strings
    scores            VARCHAR     NOT NULL,   -- JSON
    recorded_at       TIMESTAMPTZ NOT NULL
);

-- Drift checks: one row per check, one metric row per (kind, item) measured.
CREATE TABLE ml.drift_checks (
    check_id           VARCHAR     NOT NULL PRIMARY KEY,
    measured_at        TIMESTAMPTZ NOT NULL,
    model_name         VARCHAR     NOT NULL,
    version            BIGINT      NOT NULL,
    window_start       TIMESTAMPTZ NOT NULL,
    window_end         TIMESTAMPTZ NOT NULL,
    status             VARCHAR     NOT NULL,  -- ok | warn | fail (worst of the three below)
    feature_status     VARCHAR     NOT NULL,
    prediction_status  VARCHAR     NOT NULL,
    performance_status VARCHAR     NOT NULL,
    summary            VARCHAR     NOT NULL,  -- JSON
    recorded_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE ml.drift_metrics (
    check_id    VARCHAR     NOT NULL,
    kind        VARCHAR     NOT NULL,   -- feature | prediction | performance
    item        VARCHAR     NOT NULL,   -- feature name, prediction, accuracy
    psi         DOUBLE,
    ks_stat     DOUBLE,
    ks_pvalue   DOUBLE,
    value       DOUBLE,
    status      VARCHAR     NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (check_id, kind, item)
);
