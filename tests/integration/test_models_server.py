"""The registry through a real ``mlflow server`` subprocess (SQLite backend, 127.0.0.1, free port):
a version logged and registered over HTTP, aliased, resolved and loaded with its hash verified."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from trading_core.ml.config import ModelsConfig
from trading_core.ml.models import build_model
from trading_core.ml.registry import Registry


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_registry_through_a_real_mlflow_server(tmp_path: Path) -> None:
    port = _free_port()
    db, art = tmp_path / "mlflow.db", tmp_path / "artifacts"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{db}",
                             "--default-artifact-root", art.as_uri(), "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "mlflow server exited"
            assert time.monotonic() < deadline, "mlflow server did not come up"
            time.sleep(0.5)
        reg = Registry(url, art, "trading-models", "ml_signal")
        rng = np.random.default_rng(0)
        X = rng.normal(size=(300, 18))
        y = (X[:, 0] + rng.normal(0, 0.5, 300) > 0).astype(np.int64)
        pipe = build_model("logistic", ModelsConfig()).fit(X, y)
        run_id, version = reg.log_and_register(
            pipe=pipe, X_example=X[:20], params={"kind": "logistic"}, metrics={"wf.auc": 0.6},
            tags={"dagster_run_id": "r1"}, artifacts={"evaluation.json": {"ok": True}},
            version_tags={"kind": "logistic"})
        reg.set_alias("champion", version)
        pin = reg.resolve()
        assert (pin.version, pin.run_id) == (version, run_id) and reg.aliases() == {"champion": 1}
        loaded = reg.load_verified(pin)
        np.testing.assert_allclose(loaded.predict_proba(X[:5]), pipe.predict_proba(X[:5]))
        assert reg.client.get_run(run_id).data.metrics["wf.auc"] == 0.6
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
