"""Training time per model and walk-forward scores beside the baseline's.

    .venv/bin/python benchmarks/models.py                 # the ^GSPC daily sample (warehouse in a temp dir)
    .venv/bin/python benchmarks/models.py --rows 1000000  # also: fit time on 1 M synthetic rows

Sample: the real ^GSPC history loaded into a temporary warehouse, features computed with the same
function the Dagster features asset calls, then ``evaluate_models`` (purged walk-forward, default
``ModelsConfig``) and one final fit per model. Synthetic: 1 M rows x 18 inputs (seeded; the label
a noisy logistic function of three inputs), one fit per model, same hyper-parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sample(kinds: tuple[str, ...]) -> dict[str, object]:
    from trading_core.features.pipeline import update_features
    from trading_core.market_data.providers.sample import SampleProvider
    from trading_core.market_data.validation import ValidationReport
    from trading_core.ml.config import ModelsConfig
    from trading_core.ml.dataset import build_dataset
    from trading_core.ml.evaluation import evaluate
    from trading_core.ml.models import build_model
    from trading_core.ml.walkforward import walk_forward_folds
    from trading_core.warehouse import Warehouse

    cfg = ModelsConfig()
    tmp = Path(tempfile.mkdtemp())
    wh = Warehouse(tmp / "wh.duckdb")
    wh.migrate()
    df = SampleProvider(ROOT / ".cache" / "sample-packages").fetch_ohlcv(
        "yahoo", "^GSPC", "1d", datetime(1980, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
    import polars as pl

    wh.write_report(venue="yahoo", symbol="^GSPC", timeframe="1d", source="sample",
                    report=ValidationReport(accepted=df, dropped=pl.DataFrame(), quarantined=pl.DataFrame(),
                                            rows_in=df.height))
    update_features(wh, "yahoo", "^GSPC", "1d", calendar="equity")
    ds = build_dataset(wh, "yahoo", "^GSPC", "1d", cfg.label)
    bars = wh.read_bars("yahoo", "^GSPC", "1d")
    folds = walk_forward_folds(ds.bar, ds.label_end, cfg.walk_forward)
    out: dict[str, object] = {"rows": ds.rows, "folds": len(folds)}
    for k in kinds:
        t = time.perf_counter()
        ev = evaluate(k, ds, folds, cfg, bars)
        wf = time.perf_counter() - t
        t = time.perf_counter()
        build_model(k, cfg).fit(ds.X[-cfg.walk_forward.train_bars:], ds.y[-cfg.walk_forward.train_bars:])
        fit = time.perf_counter() - t
        out[k] = {"walk_forward_s": round(wf, 2), "final_fit_s": round(fit, 2),
                  **{m: round(ev.aggregate[m], 4) for m in ("auc", "balanced_accuracy", "log_loss", "accuracy")},
                  "oos_total_return": ev.trading.get("total_return"), "oos_trades": ev.trading.get("trades"),
                  "oos_buy_and_hold": ev.trading.get("buy_and_hold_return")}
        print(k, out[k], flush=True)
    return out


def synthetic(rows: int, kinds: tuple[str, ...]) -> dict[str, object]:
    from trading_core.ml.config import ModelsConfig
    from trading_core.ml.models import build_model

    rng = np.random.default_rng(42)
    X = rng.normal(size=(rows, 18))
    logit = 0.3 * X[:, 0] - 0.2 * X[:, 3] + 0.1 * X[:, 7]
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    out: dict[str, object] = {"rows": rows}
    for k in kinds:
        t = time.perf_counter()
        build_model(k, ModelsConfig()).fit(X, y)
        out[k] = {"fit_s": round(time.perf_counter() - t, 2)}
        print(k, out[k], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=0, help="also time one fit per model on this many synthetic rows")
    ap.add_argument("--models", default="logistic,random_forest,xgboost,ensemble")
    a = ap.parse_args()
    kinds = tuple(a.models.split(","))
    doc = {"sample": sample(kinds)}
    if a.rows:
        doc["synthetic"] = synthetic(a.rows, kinds)
    print(json.dumps(doc, indent=2, default=str))


if __name__ == "__main__":
    main()
