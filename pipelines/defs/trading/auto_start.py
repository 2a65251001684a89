"""``paper_auto_start_sensor``: a session per champion version for templates that opt in.

Thin: each tick lists the templates with ``auto_start: {on_champion: MODEL}`` (none: the tick
ends there, no registry read), reads each MODEL's ``champion`` alias through the MLflow client
(``MlflowResource``), and calls ``trading_core.paper.auto_start.auto_start``, which writes at most
one start request per (template, model, version) -- keyed by the derived session id, so a
repeated tick or a daemon restart never starts twice -- and stops the template's previous
auto-started session. ``paper_requests_sensor`` then launches the run like any other start.

It launches no run itself. Interval: ``TRADING_PAPER_AUTO_START_INTERVAL_S`` (default 30).
"""

from __future__ import annotations

import dagster as dg

from trading_core.ml.registry import Registry

from ..models.resources import MlflowResource
from ..resources import PaperResource
from .sensors import _interval

AUTO_START_INTERVAL_S = _interval("TRADING_PAPER_AUTO_START_INTERVAL_S", 30)


@dg.sensor(
    name="paper_auto_start_sensor",
    minimum_interval_seconds=AUTO_START_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a paper session pinned to each new champion version for templates with "
                "auto_start (and stops the previous one); does nothing unless a template opts in.",
)
def paper_auto_start_sensor(context: dg.SensorEvaluationContext, paper: PaperResource,
                            mlflow: MlflowResource) -> dg.SkipReason:
    from trading_core.paper import auto_start as au

    follow, broken = au.followers()
    for line in broken:
        context.log.warning(f"template skipped: {line}")
    if not follow:
        return dg.SkipReason("no session template opts in (auto_start: {on_champion: MODEL})")
    base = mlflow.registry()
    champions = au.champions({f.spec.on_champion for f in follow},
                             lambda m: Registry(base.uri, base.artifact_dir, base.experiment, m).alias_version("champion"))
    cfg = paper.trading_config.load()
    wh = paper.warehouse()
    outcomes = au.auto_start(paper.store(), champions, build=au.session_builder(cfg, wh, paper.trading_config.config_path),
                             check=au.preflight_check(cfg, wh))
    lines = [au.describe(o) for o in outcomes]
    for o, line in zip(outcomes, lines, strict=True):
        if o.action in ("started",) or o.stopped:
            context.log.info(line)
        elif o.action in ("refused", "failed"):
            context.log.warning(line)
    return dg.SkipReason("; ".join(lines)[:2000] or "nothing to do")
