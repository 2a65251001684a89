"""The lifecycle's entry points: train, promote, rollback, bootstrap (``ensure_champion``), drift.

Each is one call a CLI command, a Dagster asset or a test makes with a ``ModelsConfig``, a
``Warehouse`` and a ``Registry``; MLflow holds runs, versions and aliases, the warehouse holds
what was decided and measured (``warehouse/ml.py``). Connections are short: one read for the
dataset, computation with nothing open, one write per record.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..errors import TradingError
from ..warehouse import ml as store
from .config import ModelsConfig
from .dataset import Dataset, build_dataset
from .evaluation import Evaluation, evaluate_models
from .explain import shap_summary
from .model_features import CALENDAR_FEATURES
from .models import build_model, model_params
from .promotion import Candidate, Decision, decide
from .registry import ModelNotFound, Registry, git_commit

__all__ = ["drift_check", "ensure_champion", "promote", "rollback", "show", "train", "list_versions"]


def _now() -> datetime:
    return datetime.now(UTC)


def _final_rows(ds: Dataset, cfg: ModelsConfig) -> np.ndarray:
    """The rows the registered model is fitted on: the latest training window."""
    n = ds.rows
    lo = 0 if cfg.walk_forward.scheme == "anchored" else max(0, n - cfg.walk_forward.train_bars)
    return np.arange(lo, n, dtype=np.int64)


def _choose(evals: dict[str, Evaluation], cfg: ModelsConfig) -> tuple[str, list[str]]:
    """The kind to register: the best non-baseline model if it beats the baseline by the margin,
    else the baseline itself (reported as such)."""
    metric, margin = cfg.promotion.metric, cfg.promotion.margin
    base = evals["logistic"].score(metric)
    others = {k: e.score(metric) for k, e in evals.items() if k != "logistic" and np.isfinite(e.score(metric))}
    notes = []
    if not others:
        return "logistic", ["only the baseline was trained"]
    best = max(others, key=lambda k: others[k])
    if others[best] >= base + margin:
        return best, [f"{best} {metric} {others[best]:.4f} beats the baseline {base:.4f} by >= {margin}"]
    for k, s in sorted(others.items()):
        notes.append(f"{k} {metric} {s:.4f} does not beat the logistic baseline {base:.4f} by {margin} out of sample")
    notes.append("registering the baseline")
    return "logistic", notes


def _candidate(ev: Evaluation, cfg: ModelsConfig, baseline: float | None) -> Candidate:
    a = ev.aggregate
    return Candidate(ev.kind, ev.score(cfg.promotion.metric), a["mean_proba"], a["positive_rate"],
                     int(a["nan_predictions"]), int(ev.trading.get("trades") or 0), baseline)


def _record_decision(warehouse: Any, registry: Registry, version: int, action: str, d: Decision,
                     previous: int | None, champion: int | None, decision_id: str | None = None) -> dict[str, Any]:
    at = _now()
    row: dict[str, Any] = {"decision_id": decision_id or f"{action}-{uuid.uuid4().hex[:12]}", "decided_at": at,
           "model_name": registry.name, "version": version, "action": action, "promoted": d.promote,
           "previous_champion": previous, "champion": champion, "reasons": d.reasons, "scores": d.scores}
    with warehouse.connect() as con:
        store.write_decision(con, row)
    registry.set_tag(version, "last_decision", json.dumps({"action": action, "promoted": d.promote,
                                                          "reasons": d.reasons})[:4900])
    return {**row, "decided_at": at.isoformat()}


def _champion_score(registry: Registry, metric: str) -> tuple[int | None, float | None]:
    v = registry.alias_version("champion")
    if v is None:
        return None, None
    tags = dict(registry.version(v).tags or {})
    if tags.get("score_metric") != metric or "wf_score" not in tags:
        return v, None
    return v, float(tags["wf_score"])


def _apply(warehouse: Any, registry: Registry, version: int, d: Decision, action: str,
           decision_id: str | None = None) -> dict[str, Any]:
    previous = registry.alias_version("champion")
    if d.promote:
        registry.set_alias("champion", version)
        if previous is not None and previous != version:
            registry.set_tag(version, "previous_champion", str(previous))
        if registry.alias_version("challenger") == version:
            registry.delete_alias("challenger")
        registry.set_tag(version, "validation_status", "champion")
    else:
        registry.set_tag(version, "validation_status", "refused")
    champion = registry.alias_version("champion")
    return _record_decision(warehouse, registry, version, action, d, previous, champion, decision_id)


def train(cfg: ModelsConfig, warehouse: Any, registry: Registry, *, dagster_run_id: str | None = None,
          kinds: tuple[str, ...] | None = None, end: datetime | None = None) -> dict[str, Any]:
    """Walk-forward every configured model on the latest data, register the chosen one as
    ``challenger``, and apply the promotion rule. Returns a JSON-ready summary."""
    ds = build_dataset(warehouse, cfg.venue, cfg.symbol, cfg.timeframe, cfg.label, None, end)
    bars = warehouse.read_bars(cfg.venue, cfg.symbol, cfg.timeframe, None, end)
    folds, evals = evaluate_models(ds, cfg, bars, kinds)
    if "logistic" not in evals:
        raise TradingError("train: the logistic baseline must be among the models")
    chosen, notes = _choose(evals, cfg)
    rows = _final_rows(ds, cfg)
    pipe = build_model(chosen, cfg)
    pipe.fit(ds.X[rows], ds.y[rows])
    shap = shap_summary(pipe, chosen, ds.X[rows], ds.columns, seed=cfg.seed)
    metric = cfg.promotion.metric
    ev = evals[chosen]
    base = evals["logistic"].score(metric)
    created = _now()
    train_id = f"train-{created:%Y%m%dT%H%M%S}-{ds.content_hash[:8]}-{uuid.uuid4().hex[:6]}"
    commit = git_commit()
    desc = ds.describe()
    tags = {"trading.train_id": train_id, "dataset_hash": ds.content_hash, "feature_version": ds.feature_version,
            "dataset_range": f"{desc['start']}..{desc['end']}", "git_commit": commit,
            "dagster_run_id": dagster_run_id or "", "series": f"{cfg.venue}:{cfg.symbol}:{cfg.timeframe}",
            "chosen_kind": chosen, "mlflow.runName": f"{chosen}-{ds.end:%Y%m%d}"}
    params: dict[str, Any] = {"kind": chosen, "label": cfg.label.model_dump_json(),
                              "walk_forward": cfg.walk_forward.model_dump_json(), "seed": cfg.seed,
                              "train_rows": int(rows.size), "dataset_rows": ds.rows, "columns": ",".join(ds.columns)}
    params.update({f"params.{k}": json.dumps(model_params(k, cfg)) for k in evals})
    metrics: dict[str, float] = {}
    for k, e in evals.items():
        metrics.update({f"{k}.{m}": v for m, v in e.aggregate.items()})
        metrics.update({f"{k}.trading.{m}": float(v) for m, v in e.trading.items() if isinstance(v, int | float)})
    metrics.update({f"wf.{m}": v for m, v in ev.aggregate.items()})
    version_tags = {"kind": chosen, "score_metric": metric, "wf_score": repr(ev.score(metric)),
                    "wf_accuracy": repr(ev.aggregate["accuracy"]), "baseline_score": repr(base),
                    "mean_proba": repr(ev.aggregate["mean_proba"]), "positive_rate": repr(ev.aggregate["positive_rate"]),
                    "nan_predictions": str(int(ev.aggregate["nan_predictions"])),
                    "oos_trades": str(int(ev.trading.get("trades") or 0)), "dataset_hash": ds.content_hash,
                    "feature_version": ds.feature_version, "train_start": str(int(ds.ts[rows[0]])),
                    "train_end": str(int(ds.ts[rows[-1]])), "series": tags["series"],
                    "label": cfg.label.model_dump_json(), "git_commit": commit,
                    "dagster_run_id": dagster_run_id or "", "validation_status": "pending", "train_id": train_id}
    artifacts = {"evaluation.json": {k: e.summary() for k, e in evals.items()}, "shap_summary.json": shap,
                 "dataset.json": desc, "selection.json": {"chosen": chosen, "notes": notes}}
    run_id, version = registry.log_and_register(pipe=pipe, X_example=ds.X[rows[-50:]], params=params, metrics=metrics,
                                                tags=tags, artifacts=artifacts, version_tags=version_tags)
    registry.set_alias("challenger", version)
    champ_v, champ_score = _champion_score(registry, metric)
    decision = decide(_candidate(ev, cfg, base), champ_score, cfg.promotion)
    fold_rows = [{"kind": k, **f} for k, e in evals.items() for f in e.folds]
    summary = {"chosen": chosen, "notes": notes, "scores": {k: e.aggregate for k, e in evals.items()},
               "trading": {k: e.trading for k, e in evals.items()}, "shap_top": shap["ranking"][:5]}
    with warehouse.connect() as con:
        store.write_dataset(con, desc)
        store.write_training_run(con, {"train_id": train_id, "created_at": created, "dataset_hash": ds.content_hash,
                                       "model_name": registry.name, "mlflow_run_id": run_id, "version": version,
                                       "chosen_kind": chosen, "score_metric": metric, "git_commit": commit,
                                       "dagster_run_id": dagster_run_id, "summary": summary}, fold_rows)
    recorded = _apply(warehouse, registry, version, decision, "promote" if decision.promote else "refuse",
                      decision_id=f"{train_id}:decision")
    return {"train_id": train_id, "model": registry.name, "version": version, "run_id": run_id, "chosen": chosen,
            "notes": notes, "dataset": desc, "folds": len(folds), "scores": summary["scores"],
            "trading": summary["trading"], "shap_top": summary["shap_top"], "decision": recorded,
            "champion": registry.alias_version("champion"), "previous_champion": champ_v}


def _tag_candidate(registry: Registry, version: int, metric: str) -> Candidate:
    t = dict(registry.version(version).tags or {})
    if t.get("score_metric") != metric:
        raise TradingError(f"model {registry.name} v{version} was scored by {t.get('score_metric')!r}, "
                           f"the promotion rule uses {metric!r}")
    base = t.get("baseline_score")
    return Candidate(t.get("kind", "?"), float(t["wf_score"]), float(t["mean_proba"]), float(t["positive_rate"]),
                     int(t["nan_predictions"]), int(t["oos_trades"]), float(base) if base else None)


def promote(cfg: ModelsConfig, warehouse: Any, registry: Registry, version: int | None = None, *,
            force: bool = False) -> dict[str, Any]:
    """Apply the promotion rule to ``version`` (default: the challenger); ``force`` promotes a
    refused version anyway, saying so in the stored reasons."""
    if version is None:
        version = registry.alias_version("challenger")
        if version is None:
            raise ModelNotFound(f"model {registry.name} has no challenger; name a --version")
    registry.resolve(version)  # ours, with a hash
    champ_v, champ_score = _champion_score(registry, cfg.promotion.metric)
    if champ_v == version:
        raise TradingError(f"model {registry.name} v{version} is already the champion")
    d = decide(_tag_candidate(registry, version, cfg.promotion.metric), champ_score, cfg.promotion)
    if force and not d.promote:
        d = Decision(True, [*d.reasons, "forced by the operator (--force)"], d.scores)
    return _apply(warehouse, registry, version, d, "promote" if d.promote else "refuse")


def rollback(cfg: ModelsConfig, warehouse: Any, registry: Registry) -> dict[str, Any]:
    """Point ``champion`` back at the version it replaced (tag ``previous_champion``)."""
    current = registry.alias_version("champion")
    if current is None:
        raise ModelNotFound(f"model {registry.name} has no champion to roll back")
    prev = dict(registry.version(current).tags or {}).get("previous_champion")
    if not prev:
        raise TradingError(f"model {registry.name} v{current} replaced no earlier champion; nothing to roll back to")
    registry.resolve(int(prev))
    registry.set_alias("champion", int(prev))
    registry.set_tag(current, "validation_status", "rolled_back")
    d = Decision(True, [f"rolled back from v{current} to v{prev}"], {})
    return _record_decision(warehouse, registry, int(prev), "rollback", d, current, int(prev))


def ensure_champion(cfg: ModelsConfig, warehouse: Any, registry: Registry, *,
                    dagster_run_id: str | None = None) -> dict[str, Any]:
    """Idempotent bootstrap: when the registry has no champion, compute the series' features if
    none are stored, train on the sample data and promote by the rule. Returns what it did."""
    v = registry.alias_version("champion")
    if v is not None:
        return {"status": "exists", "model": registry.name, "champion": v}
    from ..features.pipeline import update_features

    with warehouse.connect(read_only=True) as con:
        from ..warehouse.features import stored_state

        state = stored_state(con, cfg.venue, cfg.symbol, cfg.timeframe)
    if state.last_feature_ts is None:
        update_features(warehouse, cfg.venue, cfg.symbol, cfg.timeframe, calendar=cfg.calendar)
    out = train(cfg, warehouse, registry, dagster_run_id=dagster_run_id)
    return {"status": "trained", **out}


def list_versions(registry: Registry) -> dict[str, Any]:
    aliases = registry.aliases()
    by_version: dict[int, list[str]] = {}
    for a, v in aliases.items():
        by_version.setdefault(v, []).append(a)
    rows = []
    for mv in registry.versions():
        t = dict(mv.tags or {})
        rows.append({"version": int(mv.version), "aliases": sorted(by_version.get(int(mv.version), [])),
                     "kind": t.get("kind"), "score_metric": t.get("score_metric"),
                     "wf_score": float(t["wf_score"]) if t.get("wf_score") else None,
                     "baseline_score": float(t["baseline_score"]) if t.get("baseline_score") else None,
                     "status": t.get("validation_status"), "run_id": mv.run_id,
                     "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat()})
    return {"model": registry.name, "tracking_uri": registry.uri, "aliases": aliases, "versions": rows}


def show(registry: Registry, version: int | None = None, alias: str = "champion") -> dict[str, Any]:
    pin = registry.resolve(version, alias)
    mv = registry.version(pin.version)
    return {"model": pin.name, "version": pin.version, "run_id": pin.run_id, "artifact_sha256": pin.sha256,
            "kind": pin.kind, "aliases": sorted(a for a, v in registry.aliases().items() if v == pin.version),
            "tags": dict(sorted((mv.tags or {}).items()))}


def drift_check(cfg: ModelsConfig, warehouse: Any, registry: Registry, version: int | None = None, *,
                now: datetime | None = None) -> dict[str, Any]:
    """Feature (PSI, KS), prediction and performance drift of the champion (or ``version``):
    reference = its training rows, current = the latest ``drift.window_bars`` bars. Stored in
    ``ml.drift_checks``/``ml.drift_metrics``; returns the check with its status."""
    from .drift import feature_drift, overall, performance_decay, prediction_drift

    pin = registry.resolve(version)
    model = registry.load_verified(pin)
    tags = dict(registry.version(pin.version).tags or {})
    ds = build_dataset(warehouse, cfg.venue, cfg.symbol, cfg.timeframe, cfg.label)
    cur_X, cur_ts = current_inputs(warehouse, cfg)
    t0, t1 = int(tags["train_start"]), int(tags["train_end"])
    ref = (ds.ts >= t0) & (ds.ts <= t1)
    if ref.sum() < 50:
        raise TradingError(f"drift: the training rows of {pin.tag()} are no longer in the warehouse")
    ref_X = ds.X[ref]
    # calendar columns cycle by construction: a 6-month window always "drifts" in month
    cols = [j for j, c in enumerate(ds.columns) if c not in CALENDAR_FEATURES]
    fd = feature_drift(ref_X[:, cols], cur_X[:, cols], tuple(ds.columns[j] for j in cols), cfg.drift)
    pd_ = prediction_drift(model.predict_proba(ref_X)[:, 1], model.predict_proba(cur_X)[:, 1], cfg.drift)
    live = ds.ts >= int(cur_ts[0])
    perf = performance_decay(ds.y[live], model.predict_proba(ds.X[live])[:, 1] if live.any() else np.zeros(0),
                             float(tags.get("wf_accuracy", "nan")), cfg.drift)
    status = overall(fd, pd_, perf)
    measured = now or _now()
    w0 = datetime.fromtimestamp(int(cur_ts[0]) / 1000, UTC)
    w1 = datetime.fromtimestamp(int(cur_ts[-1]) / 1000, UTC)
    check: dict[str, Any] = {"check_id": f"drift-{measured:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", "measured_at": measured,
             "model_name": pin.name, "version": pin.version,
             "window_start": w0, "window_end": w1, "status": status,
             "feature_status": fd.status, "prediction_status": pd_.status, "performance_status": perf.status,
             "summary": {"feature": fd.summary, "prediction": pd_.summary, "performance": perf.summary}}
    metrics = [{"kind": r.kind, **row} for r in (fd, pd_, perf) for row in r.rows]
    with warehouse.connect() as con:
        store.write_drift_check(con, check, metrics)
    return {**check, "measured_at": measured.isoformat(), "window_start": w0.isoformat(),
            "window_end": w1.isoformat(), "features": fd.rows}


def current_inputs(warehouse: Any, cfg: ModelsConfig) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs of the latest ``drift.window_bars`` bars with every input defined (labelled or
    not: drift is about what the model sees now), and their bar times (epoch ms)."""
    from ..warehouse.features import read_features
    from .model_features import MODEL_FEATURES, model_features

    with warehouse.connect(read_only=True) as con:
        feats = read_features(con, cfg.venue, cfg.symbol, cfg.timeframe)
        from ..warehouse.bars import read_bars

        bars = read_bars(con, cfg.venue, cfg.symbol, cfg.timeframe)
    mf = model_features(feats.drop("feature_version"), bars)
    X = mf.select(MODEL_FEATURES).to_numpy().astype(np.float64)
    ok = np.isfinite(X).all(axis=1)
    X, ts = X[ok], mf["ts"].dt.epoch("ms").to_numpy()[ok].astype(np.int64)
    k = cfg.drift.window_bars
    return X[-k:], ts[-k:]
