"""Regime thresholds: a plain pydantic model, kept apart from the Numba labelling code so that loading
the configuration stays light."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RegimeConfig(BaseModel):
    """Thresholds of the regime rules (see the module doc). Defaults were set on S&P 500 daily
    1999-2018 and BTC hourly and are documented in docs/features.md."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    stress_enter: float = Field(default=0.90, gt=0, le=1, description="rvol percentile that enters stress")
    stress_exit: float = Field(default=0.70, gt=0, le=1, description="stress lasts while rvol_pct >= this")
    adx_enter: float = Field(default=25.0, ge=0, le=100)
    adx_exit: float = Field(default=20.0, ge=0, le=100)
    slope_enter: float = Field(default=0.03, ge=0, description="|MA slope| in ATR/bar, with ADX confirm")
    slope_exit: float = Field(default=0.01, ge=0)
    slope_strong_enter: float = Field(default=0.08, ge=0, description="|MA slope| that is a trend alone")
    slope_strong_exit: float = Field(default=0.04, ge=0)
    min_dwell: int = Field(default=5, ge=1, description="bars a new label lasts before it may change")

    @model_validator(mode="after")
    def _hysteresis(self) -> RegimeConfig:
        pairs = [("stress", self.stress_enter, self.stress_exit), ("adx", self.adx_enter, self.adx_exit),
                 ("slope", self.slope_enter, self.slope_exit),
                 ("slope_strong", self.slope_strong_enter, self.slope_strong_exit)]
        for name, enter, exit_ in pairs:
            if exit_ > enter:
                raise ValueError(f"{name}_exit ({exit_}) must not exceed {name}_enter ({enter})")
        return self
