"""Read back the SHAP summary a training run logged (``shap_summary.json``, see ``lifecycle``).

Readers (the monitoring app) show feature importance without recomputing SHAP: training already
stored mean |SHAP| per feature with the run. This module downloads that one small artifact through
the MLflow client and validates it, so a missing or malformed artifact is "no importance stored"
or a clear ``InvalidInput``, never a traceback. MLflow is imported only when called.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

__all__ = ["SHAP_ARTIFACT", "read_shap_summary"]

SHAP_ARTIFACT = "shap_summary.json"


def read_shap_summary(client: Any, run_id: str) -> dict[str, Any] | None:
    """``{"kind", "rows", "importance": [(feature, mean |SHAP|), ...]}`` highest first, for the
    MLflow run ``run_id`` (``client`` is an ``MlflowClient``); None when the run logged none."""
    names = {a.path for a in client.list_artifacts(run_id)}
    if SHAP_ARTIFACT not in names:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(run_id, SHAP_ARTIFACT, tmp))
        try:
            doc = json.loads(local.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InvalidInput(f"{SHAP_ARTIFACT} of MLflow run {run_id} is not readable JSON: {e}") from None
    values = doc.get("mean_abs_shap") if isinstance(doc, dict) else None
    if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and math.isfinite(v) for k, v in values.items()):
        raise InvalidInput(f"{SHAP_ARTIFACT} of MLflow run {run_id} has no finite 'mean_abs_shap' per feature")
    ranked = sorted(((k, float(v)) for k, v in values.items()), key=lambda kv: (-kv[1], kv[0]))
    return {"kind": str(doc.get("kind") or ""), "rows": int(doc.get("rows") or 0), "importance": ranked}
