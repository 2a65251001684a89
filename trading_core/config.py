"""Configuration: ``config/trading.yaml`` validated by pydantic, with environment overrides.

Paths and secrets can be overridden from the environment so the same file serves a laptop, CI and
a server: ``TRADING_DATA_DIR`` moves every runtime file, ``TRADING_WAREHOUSE`` the DuckDB file, and
API keys are only ever read from the variables the config names (never stored in the file).

One rule for paths: a relative path -- in the file or in one of the environment overrides -- is
relative to the **project root** (``PROJECT_ROOT``, the folder holding ``config/`` and
``trading_core/``), wherever the config file itself lives and whatever the current directory is.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .alerts.config import AlertsConfig
from .errors import ConfigError
from .features.regime_config import RegimeConfig
from .ml.config import ModelsConfig
from .risk.config import RiskConfig, TrailingStopConfig
from .strategies.filter_config import FilterConfig
from .stress.config import StressConfig
from .symbols import Symbol, Venue
from .timeframes import Timeframe
from .yaml_io import YamlSyntaxError, decode_yaml_bytes, load_yaml_text, read_yaml_bytes

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "trading.yaml"

ProviderName = Literal["sample", "ccxt", "yfinance"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _no_nul(v: Any) -> Any:
    """Refuse a NUL byte in a path: the OS and DuckDB would silently cut the path at it."""
    if isinstance(v, str | Path) and "\x00" in str(v):
        shown = str(v).replace("\x00", "\\0")
        raise ValueError(f"path '{shown}' contains a NUL byte (\\0); a file name cannot hold one")
    return v


class UniverseConfig(_Strict):
    """A set of symbols on one venue and timeframe, fetched through an ordered provider list."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    asset_class: Literal["crypto", "equity"]
    venue: Venue
    timeframe: Timeframe
    symbols: list[Symbol] = Field(min_length=1)
    providers: list[ProviderName] = Field(
        default_factory=lambda: list[ProviderName](["sample"]), min_length=1,
        description="failover order: the first provider that answers wins",
    )
    start: date = Field(description="first day to ingest")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("symbols are listed twice")
        return v


class CcxtConfig(_Strict):
    """Live crypto bars through ccxt. Keys come from the named environment variables only."""

    exchange_id: Venue = "coinbase"
    enable_rate_limit: bool = True
    timeout_ms: int = Field(default=15_000, gt=0)
    page_limit: int = Field(default=300, gt=0, le=5000)
    retry_deadline_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    api_key_env: str | None = None
    api_secret_env: str | None = None


class YfinanceConfig(_Strict):
    """Live equity bars through yfinance (daily, and intraday where Yahoo serves it)."""

    timeout_s: float = Field(default=30.0, gt=0)
    retry_deadline_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0)


class ValidationConfig(_Strict):
    """Thresholds of the validation contract (rule codes in trading_core.market_data.validation)."""

    spike_mad_k: float = Field(default=10.0, gt=0, description="|log return| > k x rolling MAD is a spike")
    spike_window: int = Field(default=50, ge=5)
    spike_min_move: float = Field(default=0.08, gt=0, description="and the move exceeds this fraction")
    stale_bars: int = Field(default=24, ge=2, description="this many identical closes with zero volume")
    max_gap_report: int = Field(default=1000, ge=1)
    future_tolerance_bars: int = Field(default=1, ge=0)


class MarketDataConfig(_Strict):
    mode: Literal["offline", "live"] = Field(
        default="offline",
        description="offline: every universe uses the sample provider; live: the listed providers",
    )
    cache_dir: Path = Path(".cache/market_data")
    sample_dir: Path = Path(".cache/sample-packages")
    universes: list[UniverseConfig] = Field(min_length=1)
    ccxt: CcxtConfig = CcxtConfig()
    yfinance: YfinanceConfig = YfinanceConfig()
    validation: ValidationConfig = ValidationConfig()

    _paths = field_validator("cache_dir", "sample_dir", mode="before")(_no_nul)

    @model_validator(mode="after")
    def _unique_names(self) -> MarketDataConfig:
        names = [u.name for u in self.universes]
        if len(set(names)) != len(names):
            raise ValueError("universe names must be unique")
        return self


class WarehouseConfig(_Strict):
    path: Path = Path("data/warehouse.duckdb")
    serving_dir: Path = Path("data/serving")
    lock_deadline_s: float = Field(default=30.0, gt=0)

    _paths = field_validator("path", "serving_dir", mode="before")(_no_nul)


class ServicesConfig(_Strict):
    """Where the UIs listen. Loopback unless a user deliberately changes it."""

    host: str = "127.0.0.1"
    dagster_port: int = Field(default=3000, gt=0, lt=65536)
    streamlit_port: int = Field(default=8501, gt=0, lt=65536)
    mlflow_port: int = Field(default=5000, gt=0, lt=65536)

    def exposure_warning(self) -> str | None:
        """One line when ``host`` is not a loopback address (the services are then reachable from
        other machines, without authentication); None on 127.0.0.1 / localhost / ::1."""
        import ipaddress

        h = self.host.strip().lower().strip("[]")
        try:
            loopback = h == "localhost" or ipaddress.ip_address(h).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return None
        where = "EVERY network interface" if h in ("0.0.0.0", "::", "") else f"{self.host} (not loopback)"
        return (f"warning: services.host is {self.host}: the services listen on {where}, without "
                "authentication; anyone who can reach this machine can use them (127.0.0.1 keeps them local)")


ParamValue = str | float | int | bool | list[Any] | dict[str, Any]


class StrategyConfig(_Strict):
    """One strategy's section under ``strategies:``: default params, named presets, filters, stop.

    ``params`` are applied when the strategy runs without ``--param``; ``presets`` are named
    parameter sets that ``--param preset=<name>`` picks (a structured value -- a member list of a
    composite strategy, say -- lives here rather than on the command line). ``trailing_stop``
    overrides ``risk.trailing_stop`` for this strategy.
    """

    params: dict[str, ParamValue] = Field(default_factory=dict)
    presets: dict[str, dict[str, ParamValue]] = Field(default_factory=dict)
    filters: FilterConfig = FilterConfig()
    trailing_stop: TrailingStopConfig | None = None


class BacktestConfig(_Strict):
    """Defaults of ``trading backtest`` (a profile). ``risk: false`` (the default) runs backtests
    without the risk layer -- no VIX filter, order checks, circuit breakers, kill switch or
    trailing stop -- as vectorbt, backtrader and freqtrade do unless asked; ``true`` applies the
    ``risk:`` section as ``--risk`` does. ``--risk`` / ``--no-risk`` on the command line win.
    Paper sessions do not read this: they always run with the risk layer armed."""

    risk: bool = False


class TradingConfig(_Strict):
    """The whole file. Unknown keys are errors, so a typo never silently falls back to a default."""

    data_dir: Path = Path("data")
    warehouse: WarehouseConfig = WarehouseConfig()
    market_data: MarketDataConfig
    services: ServicesConfig = ServicesConfig()
    engine: dict[str, Any] = Field(default_factory=dict, description="see trading_core.engine")
    venues: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-venue fee schedules and exchange rules (engine)"
    )
    risk: RiskConfig = Field(default_factory=RiskConfig, description="see trading_core.risk, docs/risk.md")
    backtest: BacktestConfig = Field(
        default_factory=BacktestConfig, description="`trading backtest` defaults: risk layer on/off (docs/risk.md)")
    strategies: dict[str, StrategyConfig] = Field(
        default_factory=dict, description="per-strategy params, presets, filters (docs/filters.md)")
    regimes: RegimeConfig = Field(default_factory=RegimeConfig, description="see trading_core.features.regimes")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="see trading_core.ml, docs/models.md")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="alert rules and channels (docs/operations.md)")
    stress: StressConfig = Field(default_factory=StressConfig, description="stress and stability jobs (docs/stress.md)")

    _paths = field_validator("data_dir", mode="before")(_no_nul)

    def strategy(self, name: str) -> StrategyConfig:
        """The strategy's section, or the defaults (no params, filters off) when it has none."""
        return self.strategies.get(name, StrategyConfig())

    def resolve(self, root: Path = PROJECT_ROOT) -> TradingConfig:
        """Return a copy with env overrides applied and every relative path anchored at ``root``
        (the project root: the one rule for paths, in the file and in the environment alike)."""
        env = {k: _env_path(k) for k in ("TRADING_DATA_DIR", "TRADING_WAREHOUSE", "TRADING_CACHE_DIR",
                                          "TRADING_SAMPLE_DIR")}
        data_dir = _anchor(env["TRADING_DATA_DIR"] or self.data_dir, root)
        wh = self.warehouse
        default_wh = wh.path == WarehouseConfig().path
        wh_path = _anchor(env["TRADING_WAREHOUSE"], root) if env["TRADING_WAREHOUSE"] else (
            data_dir / "warehouse.duckdb" if default_wh else _anchor(wh.path, root)
        )
        serving = data_dir / "serving" if wh.serving_dir == WarehouseConfig().serving_dir else _anchor(
            wh.serving_dir, root)
        md = self.market_data
        cache, sample = env["TRADING_CACHE_DIR"], env["TRADING_SAMPLE_DIR"]
        return self.model_copy(update={
            "data_dir": data_dir,
            "warehouse": wh.model_copy(update={"path": wh_path, "serving_dir": serving}),
            "market_data": md.model_copy(update={
                "cache_dir": _anchor(cache, root) / "market_data" if cache else _anchor(md.cache_dir, root),
                "sample_dir": _anchor(sample, root) if sample else _anchor(md.sample_dir, root),
            }),
        })

    def universe(self, name: str) -> UniverseConfig:
        for u in self.market_data.universes:
            if u.name == name:
                return u
        raise ConfigError("config", [f"market_data.universes: no universe named {name!r}"])


def _anchor(p: Path, root: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else root / p


def _env_path(var: str) -> Path | None:
    v = os.environ.get(var)
    if not v:
        return None
    if "\x00" in v:  # pragma: no cover - an environment cannot normally carry one
        raise ConfigError(f"${var}", [f"{var}: contains a NUL byte (\\0); a file name cannot hold one"])
    return Path(v)


def secret_from_env(var: str | None) -> str | None:
    """Read an API key from the environment variable the config names (never from the file)."""
    return os.environ.get(var) if var else None


def config_path() -> Path:
    return Path(os.environ.get("TRADING_CONFIG") or DEFAULT_CONFIG_PATH)


def load_config(path: str | Path | None = None, *, resolve: bool = True) -> TradingConfig:
    """Load and validate the config; raise ``ConfigError`` listing every problem with its place."""
    p = Path(path) if path is not None else config_path()
    try:
        raw = read_yaml_bytes(p)
    except OSError as e:
        raise ConfigError(str(p), [f"cannot read file: {e.strerror or e}"]) from None
    try:
        data, node = load_yaml_text(decode_yaml_bytes(raw, str(p)), str(p))
    except YamlSyntaxError as e:
        where = f"line {e.line}, column {e.column}: " if e.line is not None else ""
        raise ConfigError(str(p), [f"{where}{e.detail}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(p), ["top level: expected a mapping of sections"])
    problems: list[str] = []
    cfg: TradingConfig | None = None
    try:
        cfg = TradingConfig.model_validate(data)
    except ValidationError as e:
        problems += [_describe(err, node) for err in e.errors()]
    problems += _venue_problems(data.get("venues"), node)
    if problems or cfg is None:
        raise ConfigError(str(p), problems)
    # Relative paths are relative to the project root, never to the config file's folder: a copy
    # of the file elsewhere (``--config /tmp/x.yaml``) still reads and writes the project's data.
    return cfg.resolve(PROJECT_ROOT) if resolve else cfg


def _venue_problems(venues: Any, node: yaml.Node | None) -> list[str]:
    """Each ``venues.<name>`` checked by the engine's own model (``VenueConfig``, what
    ``MarketModel.from_venue_config`` validates with), one ``path (line): message`` per problem,
    so a bad fee fails ``trading config validate`` instead of a backtest later."""
    if not isinstance(venues, dict) or not venues:
        return []  # absent/empty: nothing to check (a non-mapping is reported by TradingConfig)
    from .engine.model import VenueConfig  # the engine (numba) loads only when venues are configured

    out: list[str] = []
    for name, raw in venues.items():
        if not isinstance(raw, dict):
            continue  # TradingConfig reports the type
        try:
            VenueConfig.model_validate(raw)
        except ValidationError as e:
            out += [_describe({**err, "loc": ("venues", name, *err["loc"])}, node) for err in e.errors()]
    return out


def _describe(err: Any, node: yaml.Node | None) -> str:
    loc = [x for x in err["loc"] if not (isinstance(x, str) and x.startswith(("function-", "list[", "dict[")))]
    dotted = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".") or "top level"
    line = _line_of(node, loc)
    where = f" (line {line})" if line else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"{dotted}{where}: {msg}"


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """Line number of the deepest YAML node along ``loc`` (1-based)."""
    best = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if nxt is None:
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        best = node.start_mark.line + 1
    return best
