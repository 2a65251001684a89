"""Pipeline health: the latest Dagster runs and asset-check results, for readers that may not
talk to Dagster (the app, ``trading health``).

Where it lives, and why there: the ``pipeline_health_sensor`` hands each tick's reading to
:func:`record_pipeline_health`, which

1. replaces ``<data_dir>/ops/pipeline_health.json`` atomically (temporary file, fsync, rename):
   the document the app reads. The serving snapshot cannot carry run health: it is published
   only after an ingest settles (once after the catch-up, then once per scheduled ingest), so it
   would show a run as "started" for hours; and the live warehouse cannot be read while a step
   writes it. The sensor owns this small file alone, so it is fresh on every tick (~30 s) and a
   reader never blocks anyone. ``read_pipeline_health`` validates it (a torn or hand-edited file
   is a clear ``PipelineHealthUnreadable``, never a traceback);
2. upserts the same rows into ``ops.pipeline_runs`` / ``ops.asset_checks`` of the warehouse
   (history for queries), with a short lock deadline: DuckDB allows one writer, and a Dagster
   step holds the file while it works, so a busy warehouse skips that part of the tick with a
   log line and the next tick catches up (upserts are idempotent). The sensor never fails on it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import TradingError, WarehouseBusy

__all__ = ["CheckResult", "PipelineHealth", "PipelineHealthUnreadable", "RunSummary", "health_path",
           "read_pipeline_health", "record_pipeline_health", "write_pipeline_health"]

log = logging.getLogger(__name__)

HEALTH_FILE = "pipeline_health.json"
WAREHOUSE_DEADLINE_S = 2.0  # a sensor tick never waits long for a step's write lock
FAILURE_WINDOW = timedelta(hours=24)


class PipelineHealthUnreadable(TradingError):
    """The pipeline-health document exists but is not a valid one."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RunSummary(_Model):
    """One Dagster run: what ran, how it ended, and the failing step's message when it failed."""

    run_id: str = Field(min_length=1, max_length=128)
    job: str = Field(min_length=1, max_length=256)
    status: str = Field(min_length=1, max_length=32)  # DagsterRunStatus name: SUCCESS, FAILURE, STARTED ...
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = Field(default=None, ge=0, le=1e9)
    partition_key: str | None = Field(default=None, max_length=512)
    session_id: str | None = Field(default=None, max_length=128)
    tags: dict[str, str] = Field(default_factory=dict)
    failed_step: str | None = Field(default=None, max_length=512)
    failure: str | None = Field(default=None, max_length=4000)
    assets: list[str] = Field(default_factory=list, max_length=10_000)  # the run's asset selection, if any

    @property
    def when(self) -> datetime | None:
        return self.ended_at or self.started_at or self.created_at

    @property
    def label(self) -> str:
        """What a person calls the run: the job's name, or -- for the runs Dagster launches under its
        implicit job (``__ASSET_JOB``: automation conditions, a materialise click) -- the assets."""
        if not self.job.startswith("__"):
            return self.job
        if not self.assets:
            return "assets (Dagster's implicit job)"
        shown = ", ".join(self.assets[:3])
        return f"assets: {shown}" + (f" +{len(self.assets) - 3} more" if len(self.assets) > 3 else "")


class CheckResult(_Model):
    """The latest evaluation of one asset check."""

    asset: str = Field(min_length=1, max_length=512)
    check_name: str = Field(min_length=1, max_length=256)
    status: str = Field(min_length=1, max_length=32)  # SUCCEEDED | FAILED | PLANNED (in progress)
    passed: bool | None = None
    severity: Literal["ERROR", "WARN"] | None = None
    description: str | None = Field(default=None, max_length=4000)
    evaluated_at: datetime | None = None
    run_id: str | None = Field(default=None, max_length=128)
    partition_key: str | None = Field(default=None, max_length=512)

    @property
    def rank(self) -> int:
        """Failing errors first, then warnings, then checks in progress, then passing ones."""
        if self.passed is False:
            return 0 if self.severity != "WARN" else 1
        return 2 if self.passed is None else 3


class PipelineHealth(_Model):
    as_of: datetime
    runs: list[RunSummary] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)

    def latest_per_job(self) -> list[RunSummary]:
        """The newest run of every job, newest first (runs of Dagster's implicit asset job count
        per asset selection: one row per set of assets, not one ``__ASSET_JOB`` row for all)."""
        seen: dict[str, RunSummary] = {}
        for r in sorted(self.runs, key=_when_key, reverse=True):
            seen.setdefault(r.label, r)
        return list(seen.values())

    def failures(self, window: timedelta = FAILURE_WINDOW) -> list[RunSummary]:
        """Failed runs that ended within ``window`` of ``as_of``, newest first."""
        since = self.as_of - window
        return [r for r in sorted(self.runs, key=_when_key, reverse=True)
                if r.status == "FAILURE" and (r.when is None or r.when >= since)]

    def checks_by_urgency(self) -> list[CheckResult]:
        return sorted(self.checks, key=lambda c: (c.rank, c.asset, c.check_name))


def _when_key(r: RunSummary) -> datetime:
    return r.when or datetime.min.replace(tzinfo=UTC)


def health_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "ops" / HEALTH_FILE


def write_pipeline_health(path: str | Path, health: PipelineHealth) -> Path:
    """Replace the document at ``path`` whole: readers see the old one or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(health.model_dump_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_pipeline_health(path: str | Path) -> PipelineHealth | None:
    """The last recorded reading, or None when Dagster has not reported yet."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return PipelineHealth.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "document"
        raise PipelineHealthUnreadable(f"{path} is not a pipeline-health document ({where}: {first['msg']}); "
                                       "the pipeline_health_sensor rewrites it on its next tick") from None


def record_pipeline_health(data_dir: str | Path, warehouse_path: str | Path | None,
                           runs: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]],
                           now: datetime | None = None) -> dict[str, Any]:
    """Validate one reading, publish it as the app's document and upsert it into the warehouse
    (skipped, and said so, when the warehouse is busy or not migrated yet). Returns a summary."""
    health = PipelineHealth(as_of=now or datetime.now(UTC), runs=[RunSummary.model_validate(dict(r)) for r in runs],
                            checks=[CheckResult.model_validate(dict(c)) for c in checks])
    doc = write_pipeline_health(health_path(data_dir), health)
    summary: dict[str, Any] = {"document": str(doc), "runs": len(health.runs), "checks": len(health.checks),
                               "failed_runs_24h": len(health.failures()),
                               "failing_checks": sum(1 for c in health.checks if c.passed is False)}
    summary["warehouse"] = _store(warehouse_path, health) if warehouse_path else "not configured"
    return summary


def _store(warehouse_path: str | Path, health: PipelineHealth) -> str:
    from ..warehouse.connection import connect
    from ..warehouse.monitoring import tables_present
    from ..warehouse.ops_health import HEALTH_TABLES, upsert_pipeline_health

    if not Path(warehouse_path).is_file():
        return "skipped: no warehouse yet"
    try:
        with connect(warehouse_path, deadline_s=WAREHOUSE_DEADLINE_S) as con:
            if not set(HEALTH_TABLES) <= tables_present(con):
                return "skipped: migration 0060 not applied yet (the next Dagster step that opens the warehouse applies it)"
            n_runs, n_checks = upsert_pipeline_health(con, [r.model_dump() for r in health.runs],
                                                      [c.model_dump() for c in health.checks], health.as_of)
    except WarehouseBusy as e:
        log.info("pipeline health: warehouse busy, its upsert waits for the next tick (%s)", e)
        return f"skipped: busy ({e})"
    return f"upserted {n_runs} runs, {n_checks} checks"
