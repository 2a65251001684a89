"""Volume-profile value-area reversion: buy below the value-area low, sell at the point of control.

The profile is ``trading_core.features.levels.volume_profile`` over the last ``window`` bars
(including the current one, which is complete at its close). Flat and close < VAL -> entry; long
and close >= POC -> exit; optional ``stop_pct`` below the entry close. Works where price keeps
returning to a volume-weighted fair value (ranges); fails in trends that leave the value area.
No signal where volume is absent (indices such as ^VIX have none).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ..features.levels import volume_profile
from ..features.streaming import VolumeProfileState
from ._common import HoldState, StreamBase, hold, per_column
from .base import BoolArray, SingleVariantStrategy, StrategyParams, as_bars
from .streaming import BarSlice


class VolumeProfileParams(StrategyParams):
    """Profile window, resolution and value-area share."""

    window: int = Field(default=100, ge=5, description="bars in the rolling profile")
    bins: int = Field(default=24, ge=4, le=500, description="price bins of the profile")
    value_area: float = Field(default=0.7, gt=0, le=1, description="share of volume in the value area")
    stop_pct: float = Field(default=0.0, ge=0, lt=1, description="stop below the entry close (0: none)")


class VolumeProfile(SingleVariantStrategy[VolumeProfileParams]):
    """One variant; position state from the shared loop."""

    name: ClassVar[str] = "volume_profile"
    Params: ClassVar[type[StrategyParams]] = VolumeProfileParams

    def warmup_bars(self) -> int:
        return self.params.window

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        p = self.params
        poc, _, val = per_column(volume_profile, b.high, b.low, b.close, b.volume, n=p.window, bins=p.bins,
                                 value_area=p.value_area)
        stop = b.close * (1 - p.stop_pct) if p.stop_pct > 0 else None
        with np.errstate(invalid="ignore"):
            return hold(b.close < val, b.close >= poc, b.close, stop_px=stop)

    def stream(self, n_symbols: int) -> VolumeProfileStream:
        return VolumeProfileStream(self.params, n_symbols)


class VolumeProfileStream(StreamBase):
    """``VolumeProfileState`` (the batch kernel on the last ``window`` bars) and ``HoldState``."""

    def __init__(self, params: VolumeProfileParams, n_symbols: int) -> None:
        super().__init__(n_symbols)
        self.p = params
        self.profile = VolumeProfileState(n_symbols, n=params.window, bins=params.bins, value_area=params.value_area)
        self.hold = HoldState(n_symbols)

    def parts(self) -> dict[str, Any]:
        return {"profile": self.profile, "hold": self.hold}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        poc, _, val = self.profile.update(bar.high, bar.low, bar.close, bar.volume)
        stop = bar.close * (1 - self.p.stop_pct) if self.p.stop_pct > 0 else None
        self.t += 1
        with np.errstate(invalid="ignore"):
            return self.hold.update_simple(bar.close < val, bar.close >= poc, bar.close, stop_px=stop)
