"""The crisis catalogue (``config/crises.yaml``) and which of its windows the warehouse covers.

Coverage is decided from the stored series' first and last bar, never by running and seeing
nothing: a window the store does not hold is reported as ``no data`` with what IS stored, and
one it holds only in part as ``partial`` (run on the part it has, and said so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from .config import Crisis, CrisisCatalogue, CrisisTarget

__all__ = ["Coverage", "coverage", "load_catalogue", "window"]

Status = Literal["ok", "partial", "no data"]


def load_catalogue(path: str | Path) -> CrisisCatalogue:
    """Read and validate the catalogue; problems raise ``ConfigError`` naming the file."""
    from pydantic import ValidationError

    from ..yaml_io import load_yaml_file

    p = Path(path)
    if not p.is_absolute():
        from ..config import PROJECT_ROOT

        p = PROJECT_ROOT / p
    try:
        data, _ = load_yaml_file(p)
        return CrisisCatalogue.model_validate(data)
    except OSError as e:
        raise ConfigError(str(p), [f"cannot read the crisis catalogue: {e.strerror or e}"]) from None
    except ValidationError as e:
        raise ConfigError(str(p), [f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
                                   for err in e.errors()]) from None


def window(crisis: Crisis | tuple[date, date]) -> tuple[datetime, datetime]:
    """[start, end) instants of a crisis (its end day included)."""
    s, e = (crisis.start, crisis.end) if isinstance(crisis, Crisis) else crisis
    return (datetime(s.year, s.month, s.day, tzinfo=UTC),
            datetime(e.year, e.month, e.day, tzinfo=UTC) + timedelta(days=1))


@dataclass(frozen=True)
class Coverage:
    """What the store holds of one target over one window."""

    status: Status
    stored_first: datetime | None
    stored_last: datetime | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "note": self.note,
                "stored_first": self.stored_first.isoformat() if self.stored_first else None,
                "stored_last": self.stored_last.isoformat() if self.stored_last else None}


def coverage(warehouse: Any, target: CrisisTarget, start: datetime, end: datetime) -> Coverage:
    """``ok`` when the stored series spans [start, end), ``partial`` when it overlaps it, else ``no data``."""
    rng = warehouse.series_range(target.venue, target.symbol, target.timeframe)
    what = f"{target.symbol} {target.timeframe} on {target.venue}"
    asked = f"{start.date()} .. {(end - timedelta(days=1)).date()}"
    if rng is None:
        return Coverage("no data", None, None, f"no {what} bars stored (asked {asked})")
    first, last = rng.first_ts.astimezone(UTC), rng.last_ts.astimezone(UTC)
    stored = f"stored {first.date()} .. {last.date()}"
    if last < start or first >= end:
        return Coverage("no data", first, last, f"{what}: {stored}, outside {asked}")
    # a daily series' last bar opens at midnight of the last day; a window ending on a weekend or
    # holiday still counts as covered when the stored series runs past its last trading day
    if first <= start + timedelta(days=4) and last >= end - timedelta(days=5):
        return Coverage("ok", first, last, f"{what}: {stored}")
    return Coverage("partial", first, last, f"{what}: {stored}, covers only part of {asked}")
