"""The automation condition of everything downstream of the ingest assets (features, serving).

``eager()`` (the dependencies were updated, none is missing or in flight, the asset itself is not
in flight) AND the dependencies' blocking checks passed. For an unpartitioned asset downstream of
partitioned bars, "none missing" means every upstream partition is materialised, and "none in
flight" means no run that plans one is active; so after ``make run`` such an asset waits until
the catch-up (one run per universe, see sensors.py) has settled and then materialises ONCE,
instead of once per catch-up chunk. Offline the partitions are exactly the sample history, so
nothing stays missing; live, a partition that failed holds it back until it is repaired (the
automation tick says which dependency is missing).
"""

from __future__ import annotations

import dagster as dg


def after_bars_settle() -> dg.AutomationCondition:
    return dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
