"""``trading up``: load the offline data if the warehouse is empty, then run the whole stack.

Starts the Dagster webserver and daemon (``dagster dev``), the MLflow tracking server (SQLite
backend and artifacts under ``<data_dir>/mlflow/``) and the Streamlit app, all on the configured
loopback host, and prints their URLs in one block; each service's own output goes to a log file
under ``<data_dir>/logs/`` (Dagster logs a line per partition and run step: on the terminal it
would bury the URLs). Ctrl-C (or SIGTERM) stops every child cleanly. Services are subprocesses,
so trading_core stays free of Dagster and Streamlit imports.

One stack per data folder: a lock file (``<data_dir>/run/up.lock``, an ``flock`` held for the
life of the process, so a crash releases it) makes a second ``trading up`` refuse with one line
naming the running one, before it starts anything; a port held by another program is refused
the same way.

Once MLflow answers (its store exists then; the warm-up reads the champion through it), it starts
a background Numba warm-up (``warm_up``, in its own process, logging to
``<data_dir>/logs/numba-warmup.log``): every kernel uses ``cache=True``, so compiling them once
fills the on-disk cache and the first ``trading backtest`` after ``make run`` loads them instead
of compiling them for about a minute. ``--no-warmup`` skips it. At the same point
``trading models bootstrap`` trains and registers the first champion on the offline
data when the registry has none (log: ``models-bootstrap.log``; ``--no-models`` skips it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

# Parsing needs only the standard library; the config (pydantic/YAML) is imported by ``_up``.

LOCK_NAME = "up.lock"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="load offline data if needed and start the services")
    p.add_argument("--no-load", action="store_true", help="skip loading the offline data set")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="do not compile the Numba kernels in the background (the first backtest then does)")
    p.add_argument("--no-models", dest="models", action="store_false",
                   help="do not train the first champion model when the registry has none")
    for name, default in (("dagster", 3000), ("streamlit", 8501), ("mlflow", 5000)):
        p.add_argument(f"--{name}-port", type=_port, default=None, metavar="PORT",
                       help=f"port of {name.capitalize()} (default: services.{name}_port, {default})")
    p.set_defaults(handler=_up)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1..65535")
    return port


@dataclass(frozen=True)
class Service:
    name: str
    cmd: list[str]
    url: str
    port: int
    log: Path
    stop_signal: int = signal.SIGINT  # what Ctrl-C would send; a service that ignores it says so


def stack_services(cfg: Any, bin_dir: Path, root: Path, ports: dict[str, int]) -> list[Service]:
    """The services ``trading up`` runs, their command lines, URLs and log files."""
    host, logs = cfg.services.host, Path(cfg.data_dir) / "logs"
    url_host = f"[{host}]" if ":" in host else host
    tracking = cfg.models.tracking  # the same store and artifact folder our clients write
    data_dir = Path(cfg.data_dir)

    def url(port: int) -> str:
        return f"http://{url_host}:{port}"

    return [
        Service("Dagster", [str(bin_dir / "dagster"), "dev", "-w", str(root / "workspace.yaml"), "-h", host,
                            "-p", str(ports["dagster"])], url(ports["dagster"]), ports["dagster"],
                logs / "dagster.log"),
        # Artifacts are plain files under data/mlflow/artifacts, read by the UI and written by our
        # clients alike (they use the same SQLite store directly, so no proxied artifact URIs).
        Service("MLflow", [str(bin_dir / "mlflow"), "server", "--backend-store-uri",
                           tracking.tracking_uri(data_dir), "--default-artifact-root",
                           tracking.artifact_dir(data_dir).as_uri(), "--no-serve-artifacts", "--host", host,
                           "--port", str(ports["mlflow"]), "--workers", "1"],
                url(ports["mlflow"]), ports["mlflow"], logs / "mlflow.log",
                stop_signal=signal.SIGTERM),  # its server sits out SIGINT (>20 s), stops on SIGTERM in ~2.5 s
        Service("Streamlit", [str(bin_dir / "streamlit"), "run", str(root / "streamlit_app" / "app.py"),
                              "--server.address", host, "--server.port", str(ports["streamlit"]),
                              "--server.headless", "true", "--browser.gatherUsageStats", "false",
                              "--server.enableXsrfProtection", "true"],
                url(ports["streamlit"]), ports["streamlit"], logs / "streamlit.log"),
    ]


def _up(args: argparse.Namespace) -> int:
    from ..config import PROJECT_ROOT, config_path, load_config
    from ..errors import InvalidInput

    cfg = load_config(args.config)
    ports = {name: getattr(args, f"{name}_port") or getattr(cfg.services, f"{name}_port")
             for name in ("dagster", "streamlit", "mlflow")}
    if len(set(ports.values())) < len(ports):
        raise InvalidInput(f"two services share a port: {ports}; give each its own (services.*_port)")
    data_dir = Path(cfg.data_dir)
    lock = _take_lock(data_dir / "run" / LOCK_NAME)  # raises, naming the running stack, when held
    bin_dir = Path(sys.executable).parent
    services = stack_services(cfg, bin_dir, PROJECT_ROOT, ports)
    for svc in services:
        if _answers(cfg.services.host, svc.port):
            raise InvalidInput(f"port {svc.port} on {cfg.services.host} (for {svc.name}) is already in use "
                               f"by another program; free it or choose another with --{svc.name.lower()}-port")
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    env["TRADING_CONFIG"] = str(Path(args.config or config_path()).resolve())
    env["TRADING_DATA_DIR"] = str(data_dir.resolve())
    env.setdefault("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    # MLflow's job runner (GenAI scorers, trace archival) is nothing we use, and it makes the server
    # exit at start where /dev/shm is read-only (some containers and sandboxes).
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    cfg.models.tracking.artifact_dir(data_dir).mkdir(parents=True, exist_ok=True)
    if not args.no_load:
        from .ingest import _warehouse

        if _warehouse(cfg).is_empty():
            print("Warehouse is empty: loading the offline default data set ...", flush=True)
            rc = subprocess.call([str(bin_dir / "trading"), "ingest", "sample"], env=env)
            if rc != 0:
                print("trading: loading the sample data failed; see above", file=sys.stderr)
                return rc
    procs: list[subprocess.Popen[bytes]] = []
    background: list[tuple[subprocess.Popen[bytes], str, Path]] = []  # (process, what it is, its log)
    # SIGTERM (a supervisor, `timeout`, `kill`) must stop the services like Ctrl-C does; they run
    # in their own process groups, so nothing else would reach them.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for svc in services:
            procs.append(_spawn(svc.cmd, svc.log, env=env, cwd=PROJECT_ROOT))
        _write_lock(lock, {"pid": os.getpid(), "started": _now(), "config": env["TRADING_CONFIG"],
                           **{svc.name: svc.url for svc in services}})
        logs = data_dir / "logs"
        print(_url_block(services, logs), flush=True)
        warning = cfg.services.exposure_warning()
        if warning:
            print(f"trading: {warning}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        pending = {svc.name: svc for svc in services}
        bootstrapped = not args.models
        # The warm-up reads the champion (strategy ml_signal) through an MLflow client, which creates a
        # fresh SQLite store on first open: started before the server had created it, the two raced in
        # the store's migrations and the server died ("expected to match one row ... in
        # 'alembic_version'"). The server answers only once its store exists, so the warm-up (and the
        # bootstrap) start then.
        warming = not args.warmup
        reaped: set[int] = set()
        while all(p.poll() is None for p in procs):
            _reap_finished(background, reaped)
            for name, svc in list(pending.items()):
                if _answers(cfg.services.host, svc.port):
                    del pending[name]
                    if not pending:
                        print(f"All services answer ({time.monotonic() - t0:.0f} s).", flush=True)
            if not warming and "MLflow" not in pending:
                warming = True
                background.append((start_warmup(logs / WARMUP_LOG, env=env, cwd=PROJECT_ROOT), "the Numba warm-up",
                                   logs / WARMUP_LOG))
            if not bootstrapped and "MLflow" not in pending:
                bootstrapped = True
                boot_log = logs / "models-bootstrap.log"
                background.append((_spawn([str(bin_dir / "trading"), "models", "bootstrap"], boot_log, env=env,
                                          cwd=PROJECT_ROOT), "trading models bootstrap", boot_log))
            time.sleep(0.5)
        failed = next(s for s, p in zip(services, procs, strict=True) if p.poll() is not None)
        print(f"trading: {failed.name} stopped (exit {procs[services.index(failed)].returncode}); "
              f"see {failed.log}. Stopping the others. The end of its log:\n{_log_tail(failed.log)}",
              file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C or SIGTERM (make forwards SIGTERM to its child; people press Ctrl-C
        # twice) must not abort the stop half-way and leave the services running.
        handlers = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for p, _, _ in background:
                if p.returncode is None:  # a collected job's pid may belong to someone else by now
                    stop_background(p)
            killed = _stop(procs, services)
            if killed:
                print(f"trading: {', '.join(killed)} did not stop within 20 s of its stop signal; killed",
                      file=sys.stderr, flush=True)
            lock.close()
        finally:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])


def _reap_finished(background: list[tuple[subprocess.Popen[bytes], str, Path]], told: set[int]) -> None:
    """Collect the exit status of background jobs (warm-up, model bootstrap) that have finished, so
    none lingers as a zombie until ``up`` ends, and say once, in one line, when one failed."""
    for p, what, log in background:
        if p.poll() is not None and p.pid not in told:
            told.add(p.pid)
            if p.returncode != 0:
                print(f"trading: {what} exited {p.returncode}; see {log}", file=sys.stderr, flush=True)


def _log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a service's log, indented: why it stopped, without opening it."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            text = f.read().decode(errors="replace")
    except OSError as e:
        return f"  (cannot read {log}: {e.strerror})"
    return "\n".join("  | " + line for line in text.splitlines()[-lines:])


def _url_block(services: list[Service], logs: Path) -> str:
    width = max(len(s.name) for s in services)
    lines = ["", "The stack is starting (each URL answers within a minute):"]
    lines += [f"  {s.name:<{width}}  {s.url}" for s in services]
    lines += [f"  {'Logs':<{width}}  {logs}/  ({', '.join(s.log.name for s in services)}, {WARMUP_LOG})",
              "Press Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


def _spawn(cmd: list[str], log: Path, *, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:  # the child holds its own descriptor
        out.write(f"\n===== {_now()} trading up: {' '.join(cmd)}\n".encode())
        out.flush()
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _take_lock(path: Path) -> IO[str]:
    """Hold an exclusive ``flock`` on ``path`` for the life of this process, or refuse naming
    the stack that holds it (its pid and URLs, written into the file when it started)."""
    import fcntl

    from ..errors import InvalidInput

    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        try:
            info = json.loads(f.read() or "{}")
        except json.JSONDecodeError:
            info = {}
        f.close()
        where = ", ".join(f"{k} {v}" for k, v in info.items() if k in ("Dagster", "Streamlit", "MLflow"))
        raise InvalidInput(f"the stack is already up for this data folder (pid {info.get('pid', '?')}, started "
                           f"{info.get('started', '?')}: {where or 'starting'}); stop it with Ctrl-C in its "
                           f"terminal or `kill {info.get('pid', '<pid>')}`") from None
    return f


def _write_lock(f: IO[str], info: dict[str, Any]) -> None:
    f.seek(0)
    f.truncate()
    f.write(json.dumps(info))
    f.flush()


def read_running(data_dir: Path) -> dict[str, Any] | None:
    """The running stack's pid, start time and URLs, or None when none holds the lock."""
    import fcntl

    path = Path(data_dir) / "run" / LOCK_NAME
    if not path.exists():
        return None
    with path.open("r") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info: dict[str, Any] = json.loads(f.read() or "{}")
            except json.JSONDecodeError:
                info = {}
            return info
        fcntl.flock(f, fcntl.LOCK_UN)
        return None


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(procs: list[subprocess.Popen[bytes]], services: list[Service]) -> list[str]:
    """Send each service's process group its stop signal, SIGKILL the ones still running after 20 s;
    returns the names of those killed.

    The group can outlive its leader: ``dagster dev`` exits while the code servers it started
    are still winding down (their heartbeat timeout is 30-45 s, and they have been seen to
    outlive it). So after the leader is gone the rest of its group gets SIGTERM, then SIGKILL.
    """
    for p, svc in zip(procs, services, strict=False):
        if p.poll() is None:
            os.killpg(p.pid, svc.stop_signal)
    deadline = time.monotonic() + 20
    killed = []
    for p, svc in zip(procs, services, strict=False):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            killed.append(svc.name)
    for p in procs:
        _reap_group(p.pid)
    return killed


def _reap_group(pgid: int, grace_s: float = 5.0) -> None:
    """Wait ``grace_s`` for the group to empty by itself, then SIGTERM it, then SIGKILL it."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        try:
            if sig is not None:
                os.killpg(pgid, sig)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                os.killpg(pgid, 0)  # raises once no process is left in the group
                time.sleep(0.2)
        except ProcessLookupError:
            return
        except PermissionError:  # pragma: no cover - the id was reused by another user's group
            return


# ############# Background Numba warm-up ############# #

WARMUP_LOG = "numba-warmup.log"


def warmup_command() -> list[str]:
    """The warm-up's command line: this interpreter running ``warm_up`` (no console script needed)."""
    return [sys.executable, "-c", "import sys; from trading_core.cli.up import warm_up; sys.exit(warm_up(nice=10))"]


def start_warmup(log: Path, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``warmup_command`` in its own process group, stdout and stderr appended to ``log``;
    returns at once (the caller prints its URLs while the kernels compile)."""
    return _spawn(warmup_command(), log, env=dict(os.environ) if env is None else env, cwd=cwd or Path.cwd())


def stop_background(p: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the process group of ``p`` (a warm-up may sit in LLVM for seconds, where SIGINT
    would wait; Numba writes each cache file whole, so stopping it loses no finished kernel),
    then SIGKILL it after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            p.wait(timeout=grace_s)
            break
        except subprocess.TimeoutExpired:
            continue
    if p.poll() is None:  # pragma: no cover - SIGKILL cannot be refused
        p.wait()


class _SyntheticBars:
    """An in-memory bar source (``read_bars``) of seeded daily random walks on weekdays: the
    backtested symbol and the ``^VIX`` the market filter reads. No warehouse, so no lock."""

    def __init__(self, symbols: tuple[str, ...], n: int = 600) -> None:
        import numpy as np
        import polars as pl

        from ..market_data.schema import OHLCV_SCHEMA

        days = [datetime(2015, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(n * 7 // 5 + 7)]
        ts = [d for d in days if d.weekday() < 5][:n]
        g = np.random.default_rng(0)
        self.frames: dict[str, Any] = {}
        for k, sym in enumerate((*symbols, "^VIX")):
            close = (20.0 if sym == "^VIX" else 100.0 * (k + 1)) * np.exp(np.cumsum(g.normal(0, 0.01, n)))
            open_ = np.concatenate([[close[0]], close[:-1]])
            high, low = np.maximum(open_, close) * 1.005, np.minimum(open_, close) * 0.995
            self.frames[sym] = pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                                             "volume": g.lognormal(13.0, 0.5, n)}).cast(OHLCV_SCHEMA)  # type: ignore[arg-type]

    @property
    def span(self) -> tuple[datetime, datetime]:
        f = next(iter(self.frames.values()))
        return f["ts"][0], f["ts"][-1] + timedelta(days=1)

    def read_bars(self, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
                  end: datetime | None = None) -> Any:
        import polars as pl

        f = self.frames.get(symbol)
        if f is None:
            f = next(iter(self.frames.values())).clear()
        if start is not None:
            f = f.filter(pl.col("ts") >= start)
        if end is not None:
            f = f.filter(pl.col("ts") < end)
        return f


def warm_up(strategies: tuple[str, ...] | None = None, *, nice: int = 0) -> int:
    """Compile (or load from the on-disk cache) what a first backtest and a paper session run:
    the engine kernels (``trading_core.engine.warmup``), then tiny backtests on synthetic bars --
    every registered strategy through the batch driver (with signal filters), and ``ma_crossover``
    through the stepped driver (the ``Trader`` with the default risk layer: VIX filter, order
    checks, circuit breakers, a trailing stop) on one and on two symbols. Prints one line per step;
    returns 0, or 1 when a step that should work failed (its traceback is printed). ``nice``
    lowers this process's priority (the background run: never slow the services next to it)."""
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    t_all = time.monotonic()
    failed = 0

    def step(what: str, fn: Any, *, optional: bool = False) -> None:
        nonlocal failed
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a warm-up failure must not stop the others
            if optional:  # e.g. a strategy that needs parameters (yaml: file=...)
                print(f"{_now()} skipped {what}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                      flush=True)
                return
            failed += 1
            print(f"{_now()} FAILED {what}:", flush=True)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            return
        print(f"{_now()} {what}: {time.monotonic() - t0:.1f} s", flush=True)

    print(f"{_now()} Numba warm-up started (pid {os.getpid()}, NUMBA_CACHE_DIR="
          f"{os.environ.get('NUMBA_CACHE_DIR') or 'beside the sources'})", flush=True)
    from ..engine import warmup as engine_warmup

    step("engine kernels", engine_warmup)

    from ..backtest import BacktestRequest, run_backtest
    from ..risk.config import RiskConfig, TrailingStopConfig
    from ..strategies.filter_config import FilterConfig
    from ..strategies.registry import STRATEGIES

    one, two = _SyntheticBars(("^GSPC",)), _SyntheticBars(("^GSPC", "^NDX"))
    start, end = one.span
    base: dict[str, Any] = dict(symbol="^GSPC", venue="yahoo", timeframe="1d", start=start, end=end,
                                persist=False)
    filters = FilterConfig(smooth_window=2, confirm_bars=2, min_hold_bars=1, max_trades=5, throttle_window_bars=20)
    risk = RiskConfig().model_copy(update={"trailing_stop": TrailingStopConfig()})

    def backtest(source: _SyntheticBars, **fields: Any) -> Any:
        return lambda: run_backtest(BacktestRequest(**{**base, **fields}), source)  # type: ignore[arg-type]

    for name in strategies if strategies is not None else tuple(STRATEGIES):
        step(f"strategy {name} (batch driver, filters)",
             backtest(one, strategy=name, params={}, filters=filters), optional=name != "ma_crossover")
    step("ma_crossover (stepped driver: Trader, default risk, trailing stop)",
         backtest(one, strategy="ma_crossover", params={}, filters=filters, risk=risk))
    step("ma_crossover on two symbols (stepped driver)",
         backtest(two, strategy="ma_crossover", params={}, risk=risk, symbols=("^GSPC", "^NDX")))
    step("the command's own modules (bytecode for a first `trading backtest`)", _import_command_modules)
    print(f"{_now()} Numba warm-up {'done' if not failed else f'finished with {failed} failure(s)'} in "
          f"{time.monotonic() - t_all:.1f} s", flush=True)
    return 1 if failed else 0


def _import_command_modules() -> None:
    """Import what a saved ``trading backtest`` loads beyond the synthetic runs above (every
    subcommand's parser, the batch trading path, the warehouse writers), so Python's ``.pyc``
    files exist before the first real command and it compiles no source."""
    import importlib

    from . import build_parser

    build_parser()
    for name in ("trading.batch", "warehouse.backtests", "warehouse.risk", "warehouse.signals", "paper.reports"):
        importlib.import_module(f"trading_core.{name}")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
