"""MLflow tracking and the model registry: runs, versions, aliases, verified loading.

The tracking URI is explicit everywhere: an ``MlflowClient(tracking_uri=...)`` per registry, and
the one fluent call MLflow needs for logging a model (``mlflow.sklearn.log_model``) runs inside
``_tracking(uri)``, which sets and restores the process's URI around it. Experiments are created
with an explicit ``artifact_location`` (else MLflow picks ``<cwd>/mlruns``). Aliases, never stages.

Loading is the trust boundary (docs/models.md): only versions this platform registered (tag
``trading.registered_by``) in our experiment, pinned by number, whose artifact tree hashes to the
``artifact_sha256`` recorded at registration, whose ``MLmodel`` names only the sklearn loader,
are deserialised. Anything else raises ``UntrustedModel`` before any unpickling or skops load.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TradingError
from .config import ModelsConfig

__all__ = ["ModelNotFound", "ModelPin", "Registry", "UntrustedModel", "git_commit", "tree_sha256"]

REGISTERED_BY = "trading_core"
ALLOWED_LOADERS = {"mlflow.sklearn"}


class UntrustedModel(TradingError):
    """A model version failed verification (not ours, tampered artifact, foreign loader)."""


class ModelNotFound(TradingError):
    """No such registered model, version or alias."""


@dataclass(frozen=True)
class ModelPin:
    """Exactly which model a run uses: name, version, MLflow run id, artifact sha256."""

    name: str
    version: int
    run_id: str
    sha256: str
    kind: str

    def tag(self) -> str:
        return f"{self.name}@v{self.version}"


def tree_sha256(path: Path) -> str:
    """sha256 over every file under ``path`` (relative name and content, in sorted order)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def git_commit(root: Path | None = None) -> str:
    """The checked-out commit of the project (``unknown`` outside a git checkout)."""
    from ..config import PROJECT_ROOT

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or PROJECT_ROOT, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def quiet_mlflow() -> None:
    """MLflow logs every DB migration and warns about pip versions; keep the CLI output readable."""
    for name in ("mlflow", "alembic", "mlflow.store.db.utils", "mlflow.models.model", "mlflow.utils.environment"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@contextlib.contextmanager
def _tracking(uri: str) -> Iterator[None]:
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        if previous is None:
            mlflow.set_tracking_uri("")
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            mlflow.set_tracking_uri(previous)


class Registry:
    """One experiment and one registered model in one tracking store."""

    def __init__(self, tracking_uri: str, artifact_dir: Path, experiment: str, model_name: str) -> None:
        self.uri = tracking_uri
        self.artifact_dir = Path(artifact_dir)
        self.experiment = experiment
        self.name = model_name
        self._client: Any = None

    @classmethod
    def from_config(cls, models: ModelsConfig, data_dir: Path) -> Registry:
        t = models.tracking
        return cls(t.tracking_uri(data_dir), t.artifact_dir(data_dir), t.experiment, t.registered_model)

    # ---- plumbing ---------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            quiet_mlflow()
            from mlflow import MlflowClient

            if self.uri.startswith("sqlite:///"):
                Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return str(exp.experiment_id)
        self.artifact_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(self.client.create_experiment(self.experiment, artifact_location=self.artifact_dir.as_uri()))

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(self.name, description="Trading signal model (trading_core.ml)")

    # ---- runs and versions ------------------------------------------------------------------------
    def log_and_register(self, *, pipe: Any, X_example: Any, params: dict[str, Any], metrics: dict[str, float],
                         tags: dict[str, str], artifacts: dict[str, Any], version_tags: dict[str, str]) -> tuple[str, int]:
        """One MLflow run with ``params``/``metrics``/``tags`` and JSON ``artifacts``, the model
        logged (sklearn flavour, signature inferred) and registered as a new version carrying
        ``version_tags`` plus its artifact hash. Returns (run_id, version)."""
        import mlflow
        from mlflow.models import infer_signature

        from .models import SKOPS_TRUSTED_TYPES

        c = self.client
        exp = self.experiment_id()
        run = c.create_run(exp, tags=tags)
        rid = run.info.run_id
        try:
            for k, v in params.items():
                c.log_param(rid, k, str(v)[:6000])
            for k, v in metrics.items():
                if v is not None and v == v:
                    c.log_metric(rid, k, float(v))
            for name, doc in artifacts.items():
                c.log_dict(rid, doc, name)
            proba = pipe.predict_proba(X_example)[:, 1]
            # MLflow resolves ``models:/`` sources through the process's tracking URI
            # and logs a model into the *active* run's experiment (else experiment 0 under ./mlruns)
            with _tracking(self.uri), mlflow.start_run(run_id=rid):
                info = mlflow.sklearn.log_model(
                    pipe, name="model", signature=infer_signature(X_example, proba), input_example=X_example[:3],
                    skops_trusted_types=SKOPS_TRUSTED_TYPES,
                    pip_requirements=_requirements(), pyfunc_predict_fn="predict_proba")
                self._ensure_model()
                mv = c.create_model_version(self.name, info.model_uri, run_id=rid, model_id=info.model_id,
                                            tags={**version_tags, "trading.registered_by": REGISTERED_BY})
            version = int(mv.version)
            with tempfile.TemporaryDirectory() as tmp:
                sha = tree_sha256(self._download(version, Path(tmp)))
            c.set_model_version_tag(self.name, str(version), "artifact_sha256", sha)
            c.set_terminated(rid, "FINISHED")
        except BaseException:
            c.set_terminated(rid, "FAILED")
            raise
        return rid, version

    def _download(self, version: int, dest: Path) -> Path:
        import mlflow

        with _tracking(self.uri):
            return Path(mlflow.artifacts.download_artifacts(f"models:/{self.name}/{version}", dst_path=str(dest),
                                                            tracking_uri=self.uri, registry_uri=self.uri))

    def version(self, version: int) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(self.name, str(int(version)))
        except MlflowException:
            raise ModelNotFound(f"model {self.name} has no version {version} in {self.uri}") from None

    def versions(self) -> list[Any]:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name = '{self.name}'")
        except MlflowException:
            return []
        return sorted(found, key=lambda v: int(v.version))

    def set_tag(self, version: int, key: str, value: str) -> None:
        self.client.set_model_version_tag(self.name, str(int(version)), key, value)

    # ---- aliases ----------------------------------------------------------------------------------
    def alias_version(self, alias: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None

    def set_alias(self, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(self.name, alias, str(int(version)))

    def delete_alias(self, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):
            self.client.delete_registered_model_alias(self.name, alias)

    def aliases(self) -> dict[str, int]:
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(self.name)
        except MlflowException:
            return {}
        return {a: int(v) for a, v in (rm.aliases or {}).items()}

    # ---- verified loading -------------------------------------------------------------------------
    def resolve(self, version: int | None = None, alias: str = "champion") -> ModelPin:
        """The pin of ``version`` (or of the alias, resolved once, now)."""
        if version is None:
            v = self.alias_version(alias)
            if v is None:
                raise ModelNotFound(f"model {self.name} has no {alias!r} alias in {self.uri}; "
                                    "run `trading models bootstrap` (or `trading models train`)")
            version = v
        mv = self.version(version)
        tags = dict(mv.tags or {})
        if tags.get("trading.registered_by") != REGISTERED_BY or not tags.get("artifact_sha256"):
            raise UntrustedModel(f"model {self.name} v{version} was not registered by this platform; refusing to load")
        return ModelPin(self.name, int(mv.version), str(mv.run_id), tags["artifact_sha256"], tags.get("kind", "?"))

    def load_verified(self, pin: ModelPin) -> Any:
        """The fitted pipeline of ``pin`` after verifying run, experiment, hash and loader."""
        import mlflow
        import yaml

        mv = self.version(pin.version)
        if str(mv.run_id) != pin.run_id:
            raise UntrustedModel(f"model {pin.tag()}: run id {mv.run_id} differs from the pinned {pin.run_id}")
        run = self.client.get_run(pin.run_id)
        if str(run.info.experiment_id) != self.experiment_id():
            raise UntrustedModel(f"model {pin.tag()}: its run is outside experiment {self.experiment!r}")
        with tempfile.TemporaryDirectory() as tmp:
            path = self._download(pin.version, Path(tmp))
            got = tree_sha256(path)
            if got != pin.sha256:
                raise UntrustedModel(f"model {pin.tag()}: artifact sha256 {got[:12]}... differs from the registered "
                                     f"{pin.sha256[:12]}... (tampered or corrupted); refusing to load")
            flavors = yaml.safe_load((path / "MLmodel").read_text())["flavors"]
            loader = flavors.get("python_function", {}).get("loader_module")
            if loader not in ALLOWED_LOADERS or set(flavors) - {"python_function", "sklearn"}:
                raise UntrustedModel(f"model {pin.tag()}: loader {loader!r} / flavours {sorted(flavors)} not allowed")
            return mlflow.sklearn.load_model(str(path))


def _requirements() -> list[str]:
    """Pinned requirements without MLflow's slow environment inference."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("scikit-learn", "xgboost", "numpy")]
