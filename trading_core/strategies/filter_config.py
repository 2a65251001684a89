"""Signal-filter settings: a plain pydantic model, kept apart from the Numba filter state machine so
that loading the configuration stays light."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FilterConfig(BaseModel):
    """Per-strategy signal filters. ``FilterConfig()`` changes nothing (every filter off)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    smooth_window: int = Field(default=1, ge=1, le=500,
                               description="a signal needs a strict majority of true bars in this window")
    confirm_bars: int = Field(default=1, ge=1, le=500,
                              description="the smoothed signal must hold this many consecutive bars")
    min_hold_bars: int = Field(default=0, ge=0, description="exits wait until a position is this old")
    max_trades: int = Field(default=0, ge=0, le=1000, description="entries per throttle window; 0 = no limit")
    throttle_window_bars: int = Field(default=0, ge=0, description="bars in the throttle window")
    max_bar_age_ms: int = Field(default=0, ge=0,
                                description="no new entry when the bar closed longer ago than this; 0 = off")
    max_gap_ms: int = Field(default=0, ge=0,
                            description="no new entry on a bar whose gap since the previous one is larger; 0 = off")

    @property
    def is_noop(self) -> bool:
        return self == FilterConfig()
