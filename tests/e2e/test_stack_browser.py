"""The stack in a real browser, as a new user meets it after `make run`.

`trading up` on a fresh data folder (the offline sample loaded by `up` itself), then Chromium from
the system packages, driven by Playwright (its own browser download is not reachable here),
clicks through every page of the app, starts a replay session from the Paper trading page,
watches it trade, stops it, and opens the Dagster and MLflow UIs. Screenshots of every step go to
``data/e2e-screenshots/`` (git-ignored) so a person can look at them. Run with `make test-e2e`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from trading_core.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = PROJECT_ROOT / "data" / "e2e-screenshots"
PAGES = ["Overview", "Paper trading", "Sessions & backtests", "Markets & regimes", "Models", "Stress & stability"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, deadline: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    while True:
        assert proc.poll() is None, log.read_text()[-4000:]
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer\n{log.read_text()[-4000:]}"
        time.sleep(1)


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {"dagster": _free_port(), "streamlit": _free_port(), "mlflow": _free_port()}
        cfg = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
        cfg["services"].update({f"{k}_port": v for k, v in self.ports.items()})
        self.config = root / "config" / "trading.yaml"
        self.config.parent.mkdir(parents=True)
        self.config.write_text(yaml.safe_dump(cfg))
        home = root / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
        self.data = root / "data"
        self.env = {**os.environ, "TRADING_DATA_DIR": str(self.data), "DAGSTER_HOME": str(home),
                    "TRADING_SAMPLE_DIR": str(PROJECT_ROOT / ".cache" / "sample-packages")}
        self.log = root / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self) -> None:
        trading = str(Path(sys.executable).parent / "trading")
        with self.log.open("w") as out:  # a file, not a pipe: run workers inherit it
            self.proc = subprocess.Popen([trading, "--config", str(self.config), "up", "--no-models"],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        for service in ("streamlit", "dagster", "mlflow"):
            _wait_http(self.url(service) + "/", deadline, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=90)

    def status(self, sid: str) -> dict:
        path = self.data / "paper" / "sessions" / sid / "status.json"
        return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if CHROMIUM is None:
        pytest.skip("Chromium from the system packages is not installed (apt-get install chromium)")
    s = Stack(tmp_path_factory.mktemp("stack"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def page(stack: Stack) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        yield pg
        browser.close()


def _settle(pg: object) -> None:
    """Wait until Streamlit finished running the script (no 'Running...' status widget)."""
    pg.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    pg.wait_for_selector('[data-testid="stMain"]', timeout=60_000)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not pg.locator('[data-testid="stStatusWidget"]').is_visible():  # type: ignore[attr-defined]
            return
        time.sleep(0.5)


def _content(pg: object, min_chars: int = 80, timeout_s: float = 90) -> str:
    """The page's text once it has some (a page renders after its data loads)."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = pg.locator('[data-testid="stMain"]').inner_text()  # type: ignore[attr-defined]
        if len(text) > min_chars:
            time.sleep(1.0)  # charts draw a moment after the text
            return pg.locator('[data-testid="stMain"]').inner_text()  # type: ignore[attr-defined]
        time.sleep(0.5)
    return text


def _shot(pg: object, name: str, folder: Path = SHOTS) -> Path:
    """The whole page: Streamlit scrolls inside its main element, so a "full page" screenshot of the
    window shows only the first screen; the viewport grows to the main element's height for the shot."""
    size = pg.viewport_size  # type: ignore[attr-defined]
    height = pg.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 0")  # type: ignore
    path = folder / f"{name}.png"
    try:
        if height > size["height"]:
            pg.set_viewport_size({"width": size["width"], "height": min(int(height), 12_000)})  # type: ignore
            time.sleep(1.0)  # charts and tables redraw at the new size
        pg.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    finally:
        pg.set_viewport_size(size)  # type: ignore[attr-defined]
    return path


def _png_height(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[20:24], "big")  # the IHDR chunk: width at 16, height at 20


def _clipped_tables(pg: object) -> list[list[int]]:
    """Visible tables whose columns do not fit their frame (content width, frame width): a table a
    person has to scroll sideways to read."""
    return pg.evaluate("""() => [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 2)
        .map(e => [e.scrollWidth, e.clientWidth])""")  # type: ignore[attr-defined]


def _bars_shown(pg: object) -> int:
    """The live panel's "Bars" metric (bars processed), as the page shows it now."""
    metric = pg.locator('[data-testid="stMetric"]').filter(has_text="Bars").first  # type: ignore[attr-defined]
    found = re.search(r"([\d,]+)\s*/", metric.inner_text()) or re.search(r"Bars\s*([\d,]+)", metric.inner_text())
    return int(found.group(1).replace(",", "")) if found else -1


def _no_traceback(pg: object, where: str) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0, (  # type: ignore[attr-defined]
        where, pg.locator('[data-testid="stException"]').first.inner_text())  # type: ignore[attr-defined]


def test_every_page_renders_real_content_without_a_traceback(stack: Stack, page: object) -> None:
    pg = page
    pg.goto(stack.url("streamlit"))  # type: ignore[attr-defined]
    _settle(pg)
    for i, title in enumerate(PAGES):
        pg.get_by_role("link", name=re.compile(re.escape(title))).first.click()  # type: ignore[attr-defined]
        _settle(pg)
        text = _content(pg)
        if title.startswith("Markets"):  # the shot shows the candles, not the space they will fill
            pg.wait_for_selector(".js-plotly-plot", timeout=60_000)  # type: ignore[attr-defined]
            _settle(pg)
        shot = _shot(pg, f"{i + 1:02d}-{re.sub(r'[^a-z]+', '-', title.lower()).strip('-')}")
        _no_traceback(pg, title)
        assert len(text) > 80, (title, text)
        assert not _clipped_tables(pg), (title, "tables wider than their frame", _clipped_tables(pg))
        if title == "Overview":  # the whole page, not its first screen (Streamlit scrolls inside stMain)
            assert _png_height(shot) > pg.viewport_size["height"], shot  # type: ignore[attr-defined]


def test_a_replay_session_started_in_the_browser_trades_live_and_stops(stack: Stack, page: object) -> None:
    pg = page
    pg.goto(stack.url("streamlit"))  # type: ignore[attr-defined]
    _settle(pg)
    pg.get_by_role("link", name=re.compile("Paper trading")).first.click()  # type: ignore[attr-defined]
    _settle(pg)
    _content(pg)
    if not pg.get_by_role("button", name="Start session").is_visible():  # type: ignore[attr-defined]
        pg.get_by_text("Start a session").first.click()  # type: ignore[attr-defined]  # folded once sessions exist
    # slow enough to be watched and stopped: at the template's 200 bars/s its 2,160 bars are over in 11 s
    speed = pg.get_by_label("Replay speed", exact=True)  # type: ignore[attr-defined]
    speed.fill("20")
    speed.press("Tab")
    _settle(pg)
    pg.get_by_role("button", name="Start session").click()  # type: ignore[attr-defined]
    deadline, found = time.monotonic() + 300, None
    while time.monotonic() < deadline and found is None:  # the pre-flight compiles the engine first
        found = re.search(r"Session (ps-[0-9a-f]{12}) requested", _content(pg, timeout_s=5))
        if found is None and pg.locator('[data-testid="stAlertContentError"]').count():  # type: ignore
            break
        time.sleep(1)
    _shot(pg, "07-session-requested")
    assert found, _content(pg, timeout_s=1)
    sid = found.group(1)
    # the Dagster sensor launches the job; the session trades through its staged start
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (stack.status(sid).get("bars_processed") or 0) < 200:
        time.sleep(2)
    assert (stack.status(sid).get("bars_processed") or 0) >= 200, (stack.status(sid), stack.log.read_text()[-3000:])
    time.sleep(5)  # the live panel refreshes on its own
    _settle(pg)
    _no_traceback(pg, "live session")
    assert pg.locator(".js-plotly-plot").count() >= 1  # type: ignore[attr-defined]
    first = _bars_shown(pg)
    time.sleep(6)  # no reload, no click: the panel's fragment reruns every few seconds
    assert _bars_shown(pg) > first > 0, (first, _bars_shown(pg))
    _shot(pg, "08-session-trading")
    pg.get_by_role("button", name=re.compile("Stop")).first.click()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and stack.status(sid).get("state") not in ("stopped", "completed"):
        time.sleep(1)
    assert stack.status(sid).get("state") == "stopped", stack.status(sid)  # stopped by the click, not run out
    pg.reload()  # type: ignore[attr-defined]
    _settle(pg)
    _shot(pg, "09-session-stopped")
    _no_traceback(pg, "stopped session")


def test_dagster_and_mlflow_uis_open(stack: Stack, page: object) -> None:
    pg = page
    pg.goto(stack.url("dagster") + "/assets")  # type: ignore[attr-defined]
    pg.wait_for_selector("text=crypto_bars", timeout=120_000)  # type: ignore[attr-defined]
    _shot(pg, "10-dagster-assets")
    pg.goto(stack.url("mlflow"))  # type: ignore[attr-defined]  (its UI polls: never network-idle)
    pg.wait_for_selector("text=/Experiments|Default/", timeout=120_000)  # type: ignore[attr-defined]
    _shot(pg, "11-mlflow")
