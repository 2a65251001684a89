"""Sessions that follow a champion: templates, the pure plan, and exactly-once starts and stops
against a real session store (the registry side is in tests/integration/test_auto_start_sensor.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from paper_support import gspc_request

from trading_core.config import PROJECT_ROOT
from trading_core.errors import InvalidInput
from trading_core.paper import auto_start as au
from trading_core.paper.config import SessionConfig
from trading_core.paper.control import SessionStore
from trading_core.paper.templates import AutoStart, list_templates, load_template

FOLLOW = """description: follows the champion
strategy: ml_signal
params: {reload: true}
symbol: ^GSPC
venue: yahoo
timeframe: 1d
start: 2016-01-01
feed: replay
auto_start: {on_champion: ml_signal%s}
"""
MANUAL = "description: no auto_start\nstrategy: ma_crossover\nsymbol: ^GSPC\nvenue: yahoo\ntimeframe: 1d\n"


def _build(f: au.Follower, version: int) -> SessionConfig:
    """The pinned configuration the real builder makes (``session_builder`` needs a registry)."""
    params = au.pinned_template(f.doc, f.spec.on_champion, version)["params"]
    return SessionConfig(name=au.session_name(f, version), template=f.template,
                         request=gspc_request(strategy="ml_signal", params={k: str(v) for k, v in params.items()}))


@pytest.fixture
def tpl(tmp_path: Path) -> Path:
    d = tmp_path / "sessions"
    d.mkdir()
    (d / "follow.yaml").write_text(FOLLOW % "")
    (d / "manual.yaml").write_text(MANUAL)
    return d


def _starts(store: SessionStore) -> list[tuple[str, str]]:
    return [(sid, r.action) for sid in store.session_ids() for r in store.requests(sid)]


def test_every_shipped_template_loads_and_none_starts_a_session_on_a_fresh_run() -> None:
    shipped = PROJECT_ROOT / "config" / "sessions"
    names = list_templates(shipped)
    assert {"btc-ma-crossover", "spx-ml-champion", "spx-ml-auto"} <= set(names)
    docs = {n: load_template(n, shipped) for n in names}
    assert all(d.get("description") for d in docs.values())
    assert AutoStart.model_validate(docs["spx-ml-auto"]["auto_start"]).enabled is False
    follow, broken = au.followers(shipped)
    assert follow == [] and broken == []


def test_an_auto_start_block_is_validated_and_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(FOLLOW % ", keep_prev: true")
    with pytest.raises(InvalidInput, match=r"typo\.yaml: auto_start\.keep_prev"):
        load_template("typo", tmp_path)
    (tmp_path / "rules.yaml").write_text(MANUAL + "auto_start: {on_champion: ml_signal}\n")
    with pytest.raises(InvalidInput, match="auto_start needs strategy: ml_signal"):
        load_template("rules", tmp_path)
    with pytest.raises(InvalidInput, match="no such template"):
        load_template("absent", tmp_path)
    with pytest.raises(InvalidInput, match="letters, digits"):
        load_template("../etc", tmp_path)


def test_the_pinned_template_trades_that_version_without_reloading() -> None:
    doc = {"strategy": "ml_signal", "params": {"reload": True, "entry_threshold": 0.6}}
    assert au.pinned_template(doc, "m", 3)["params"] == {"entry_threshold": 0.6, "model": "m", "version": 3,
                                                         "reload": "false"}
    assert au.auto_session_id("t", "m", 3) == au.auto_session_id("t", "m", 3) != au.auto_session_id("t", "m", 4)


def test_plan_starts_the_champion_once_and_stops_only_older_sessions() -> None:
    f = au.Follower("follow", AutoStart(on_champion="m"), {})
    keep = au.Follower("keep", AutoStart(on_champion="m", keep_previous=True), {})
    assert au.plan([f], {"m": None}, [])[0].start is False
    first = au.plan([f], {"m": 1}, [])[0]
    assert first.start and first.session_id == au.auto_session_id("follow", "m", 1) and first.stop == ()
    s1 = au.AutoSession(au.auto_session_id("follow", "m", 1), "follow", 10.0, "running", 1)
    s2 = au.AutoSession(au.auto_session_id("follow", "m", 2), "follow", 20.0, "running", 2)
    second = au.plan([f], {"m": 2}, [s1])[0]
    assert second.start and second.stop == (s1.session_id,)
    assert au.plan([keep], {"m": 2}, [au.AutoSession(s1.session_id, "keep", 10.0, "running", 1)])[0].stop == ()
    # a rollback to v1 (its session exists, older than v2's): nothing started, nothing stopped
    back = au.plan([f], {"m": 1}, [s1, s2])[0]
    assert not back.start and back.stop == () and "already started for version 1" in back.note


def test_champion_moves_start_one_session_per_version_and_stop_the_previous(tpl: Path, tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "paper")
    run = lambda v: au.auto_start(store, {"ml_signal": v}, build=_build, directory=tpl)  # noqa: E731
    assert [o.action for o in run(None)] == ["no_champion"] and store.session_ids() == []
    (o1,) = run(1)
    assert o1.action == "started" and o1.template == "follow" and o1.version == 1
    assert _starts(store) == [(o1.session_id, "start")]
    assert store.requests(o1.session_id)[0].source == "champion"
    config = store.load(o1.session_id)
    assert config.template == "follow" and config.name == "follow-v1"
    assert config.request.params["version"] == "1" and config.request.params["reload"] == "false"
    (again,) = run(1)  # a repeated tick, a restart: nothing new
    assert again.action == "already_started" and "already started for version 1" in au.describe(again)
    assert len(_starts(store)) == 1
    (o2,) = run(2)
    assert o2.action == "started" and o2.stopped == [o1.session_id]
    assert sorted(_starts(store)) == sorted([(o1.session_id, "start"), (o1.session_id, "stop"),
                                            (o2.session_id, "start")])
    assert store.desired(o1.session_id) == "stopped" and store.desired(o2.session_id) == "running"
    assert "moved to v2" in store.requests(o1.session_id)[-1].reason
    run(2)
    assert len(_starts(store)) == 3  # the manual template never got a session


def test_keep_previous_leaves_the_old_session_running(tmp_path: Path) -> None:
    d = tmp_path / "sessions"
    d.mkdir()
    (d / "follow.yaml").write_text(FOLLOW % ", keep_previous: true")
    store = SessionStore(tmp_path / "paper")
    (o1,) = au.auto_start(store, {"ml_signal": 1}, build=_build, directory=d)
    (o2,) = au.auto_start(store, {"ml_signal": 2}, build=_build, directory=d)
    assert o2.action == "started" and o2.stopped == []
    assert store.desired(o1.session_id) == store.desired(o2.session_id) == "running"


def test_a_refused_preflight_writes_nothing_and_keeps_the_previous_session(tpl: Path, tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "paper")
    (o1,) = au.auto_start(store, {"ml_signal": 1}, build=_build, directory=tpl)
    (refused,) = au.auto_start(store, {"ml_signal": 2}, build=_build, directory=tpl,
                               check=lambda c: ["data: ^GSPC: last bar is 30 bars old"])
    assert refused.action == "refused" and "pre-flight: data" in refused.reasons[0]
    assert store.session_ids() == [o1.session_id] and store.desired(o1.session_id) == "running"
    (later,) = au.auto_start(store, {"ml_signal": 2}, build=_build, directory=tpl)  # the next tick retries
    assert later.action == "started" and later.stopped == [o1.session_id]


def test_a_session_created_without_its_start_request_is_completed_once(tpl: Path, tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "paper")
    sid = au.auto_session_id("follow", "ml_signal", 1)
    f = au.followers(tpl)[0][0]
    store.create(_build(f, 1), session_id=sid, source="champion")
    for p in store.requests_dir(sid).glob("*.json"):  # a crash right after session.json was written
        p.unlink()
    (o,) = au.auto_start(store, {"ml_signal": 1}, build=_build, directory=tpl)
    assert o.action == "started" and [r.action for r in store.requests(sid)] == ["start"]
    au.auto_start(store, {"ml_signal": 1}, build=_build, directory=tpl)
    assert len(store.requests(sid)) == 1


def test_dry_run_says_what_it_would_do_and_writes_nothing(tpl: Path, tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "paper")
    (o,) = au.auto_start(store, {"ml_signal": 1}, build=_build, directory=tpl, dry_run=True)
    assert o.action == "planned" and o.reasons == ["start"] and store.session_ids() == []
