"""The stress and stability jobs and their schedules (``stress.schedules`` in the config).

Stress runs weekly (one run per crisis partition), stability nightly; both are runnable by hand
from the Dagster UI (Launchpad, pick the crisis partitions) or ``trading stress`` / ``trading
stress stability``. ``stress.schedules.enabled: false`` loads the schedules stopped.
"""

from __future__ import annotations

import dagster as dg

from trading_core.config import load_config

from .assets import crisis_names, crisis_partitions

stress_job = dg.define_asset_job(
    "stress_job", selection=dg.AssetSelection.assets("crisis_stress"), partitions_def=crisis_partitions,
    description="Crisis survival and Monte Carlo: one run per crisis partition.", tags={"trading/domain": "stress"})
stability_job = dg.define_asset_job(
    "stability_job", selection=dg.AssetSelection.assets("parameter_stability"),
    description="Parameter sweeps and walk-forward optimisation.", tags={"trading/domain": "stress"})


def _status() -> dg.DefaultScheduleStatus:
    on = load_config().stress.schedules.enabled
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED


@dg.schedule(name="stress_weekly_schedule", job=stress_job, cron_schedule=load_config().stress.schedules.stress_cron,
             execution_timezone="UTC", default_status=_status(),
             description="Every crisis partition of the stress job, once a week (stress.schedules.stress_cron).")
def stress_weekly_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    stamp = context.scheduled_execution_time.isoformat()
    return [dg.RunRequest(run_key=f"{stamp}:{name}", partition_key=name) for name in crisis_names()]


stability_nightly_schedule = dg.ScheduleDefinition(
    name="stability_nightly_schedule", job=stability_job, cron_schedule=load_config().stress.schedules.stability_cron,
    execution_timezone="UTC", default_status=_status(),
    description="The parameter sweeps, nightly (stress.schedules.stability_cron).")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[stress_job, stability_job], schedules=[stress_weekly_schedule,
                                                                      stability_nightly_schedule])
