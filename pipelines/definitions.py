"""The ``trading`` code location: every module under ``pipelines/defs`` is loaded automatically.

Each domain folder (ingest, serving, ...) contributes its assets, checks, jobs, schedules and
sensors through module-level definitions, so adding a domain never touches this file.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
