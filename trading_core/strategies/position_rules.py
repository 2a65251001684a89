"""Position management a strategy declares (YAML ``position:``); the Trader carries it out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PositionRules"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PositionRules(_Frozen):
    """Position management beyond in/out (per strategy, YAML ``position:``), every action an event.

    ``scale_in``: add ``scale_in_fraction`` of the size the position opened with each time the position gains
    ``scale_in_step_pct`` from its average price, up to ``scale_in_max`` adds. ``average_down``
    (cost averaging): add the same share each time it loses ``average_down_step_pct`` from its
    average price, up to ``average_down_max`` adds. ``scale_out_pct``: close ``scale_out_fraction``
    of the position once, when it gains that much. ``max_adv_participation``: cap every signal
    order at this fraction of the symbol's average daily volume (0 = no cap). Exits that move
    with the market are the trailing stop (ATR or percent, ``risk.trailing_stop``).
    """

    scale_in_step_pct: float = Field(default=0.0, ge=0)
    scale_in_fraction: float = Field(default=0.5, gt=0, le=1)
    scale_in_max: int = Field(default=0, ge=0)
    average_down_step_pct: float = Field(default=0.0, ge=0)
    average_down_max: int = Field(default=0, ge=0)
    scale_out_pct: float = Field(default=0.0, ge=0)
    scale_out_fraction: float = Field(default=0.5, gt=0, lt=1)
    max_adv_participation: float = Field(default=0.0, ge=0, le=1)

    @property
    def any(self) -> bool:
        return bool((self.scale_in_step_pct and self.scale_in_max) or
                    (self.average_down_step_pct and self.average_down_max) or self.scale_out_pct or
                    self.max_adv_participation)
